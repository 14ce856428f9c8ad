// Hidden nodes: sealing, the public view, purge_hidden, and rehydration from a sealed blob.
#include <gtest/gtest.h>

#include "session/sealer.h"
#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::Assistant;
using testing::Reasoning;
using testing::SessionFixture;
using testing::User;

constexpr std::int64_t kHourMicros = 3600LL * 1000 * 1000;
constexpr std::int64_t kHalfHourMillis = 1800LL * 1000;

TEST(SealerTest, RoundTripsAndRejectsTamperingAndOtherKeys) {
  SealKey key = SealKey::Random();
  std::string blob = Seal(key, "the plaintext");
  auto opened = OpenSealed(key, blob);
  ASSERT_TRUE(opened.IsOk());
  EXPECT_EQ(*opened, "the plaintext");
  EXPECT_NE(Seal(key, "the plaintext"), blob);  // fresh nonce every time
  for (std::size_t i = 0; i < blob.size(); ++i) {
    std::string bad = blob;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(OpenSealed(key, bad).GetStatus().Code(), StatusCode::kInvalidArgument) << i;
  }
  EXPECT_FALSE(OpenSealed(SealKey::Random(), blob).IsOk());
  EXPECT_FALSE(OpenSealed(key, blob.substr(0, 20)).IsOk());
  EXPECT_FALSE(OpenSealed(key, "").IsOk());
  EXPECT_TRUE(OpenSealed(key, Seal(key, "")).IsOk());
}

TEST(SealerTest, KeysParseFromHex) {
  SealKey key = SealKey::Random();
  auto parsed = SealKey::FromHex("  " + key.ToHex() + "\n");
  ASSERT_TRUE(parsed.IsOk());
  EXPECT_EQ(parsed->Bytes(), key.Bytes());
  EXPECT_FALSE(SealKey::FromHex("abc").IsOk());
  EXPECT_FALSE(SealKey::FromHex(std::string(64, 'g')).IsOk());
}

class HiddenTest : public SessionFixture {};

TEST_F(HiddenTest, HiddenNodesAreSealedAndShownAsPlaceholders) {
  SessionInfo s = NewSession();
  AppendResult r = AppendOrDie(s, Id(), {User("q"), Reasoning("secret chain of thought"), Assistant("a")});
  EXPECT_TRUE(r.sealed[0].empty());
  ASSERT_FALSE(r.sealed[1].empty());
  EXPECT_TRUE(r.sealed[2].empty());

  auto node = service_->GetNode("acme", s.id, r.ids[1]);
  ASSERT_TRUE(node.IsOk());
  EXPECT_EQ(node->content.text, "secret chain of thought");  // the server (and engine) see it
  EXPECT_EQ(node->sealed, r.sealed[1]);
  Node view = PublicView(*node);
  EXPECT_EQ(view.id, r.ids[1]);
  EXPECT_EQ(view.content.kind, NodeKind::kReasoning);
  EXPECT_TRUE(view.content.text.empty());
  EXPECT_TRUE(view.content.tokens.empty());
  EXPECT_EQ(view.token_count, 23u);
  EXPECT_EQ(view.sealed, r.sealed[1]);
  EXPECT_EQ(PublicView(*service_->GetNode("acme", s.id, r.ids[0])).content.text, "q");

  // The blob is the node's content under the server key.
  auto plain = OpenSealed(*Options().seal_key, r.sealed[1]);
  ASSERT_TRUE(plain.IsOk());
  EXPECT_EQ(*DecodeContent(*plain), Reasoning("secret chain of thought"));
  // Re-appending the same hidden node hands back the stored blob.
  AppendResult again = AppendOrDie(s, r.ids[0], {Reasoning("secret chain of thought")});
  EXPECT_FALSE(again.created[0]);
  EXPECT_EQ(again.sealed[0], r.sealed[1]);
}

TEST_F(HiddenTest, PurgeDropsOldHiddenContentAndRehydrateRestoresIt) {
  SessionInfo s = NewSession();
  AppendResult old_nodes = AppendOrDie(s, Id(), {User("q"), Reasoning("old thoughts")});
  env_.AdvanceMicros(kHourMicros);
  AppendResult young = AppendOrDie(s, old_nodes.head, {Reasoning("young thoughts")});

  auto purged = service_->PurgeHidden(kHalfHourMillis, std::nullopt);
  ASSERT_TRUE(purged.IsOk());
  EXPECT_EQ(*purged, 1u);
  auto node = service_->GetNode("acme", s.id, old_nodes.ids[1]);
  ASSERT_TRUE(node.IsOk());
  EXPECT_TRUE(node->purged);
  EXPECT_TRUE(node->content.text.empty());
  EXPECT_TRUE(node->sealed.empty());
  EXPECT_EQ(node->token_count, 12u);
  EXPECT_EQ(node->content.kind, NodeKind::kReasoning);
  EXPECT_FALSE(service_->GetNode("acme", s.id, young.ids[0])->purged);
  EXPECT_EQ(service_->GetNode("acme", s.id, old_nodes.ids[0])->content.text, "q");  // public: kept
  // The path still resolves through the placeholder.
  EXPECT_EQ(service_->Path("acme", s.id, young.ids[0])->size(), 3u);

  // A tampered blob or another node's blob is refused, and nothing changes.
  std::string tampered = old_nodes.sealed[1];
  tampered.back() = static_cast<char>(tampered.back() ^ 0x20);
  EXPECT_EQ(service_->Rehydrate("acme", s.id, old_nodes.ids[1], tampered).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  auto wrong = service_->Rehydrate("acme", s.id, old_nodes.ids[1], young.sealed[0]);
  ASSERT_EQ(wrong.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong.GetStatus().Message().find("another node"), std::string::npos);
  EXPECT_TRUE(service_->GetNode("acme", s.id, old_nodes.ids[1])->purged);
  EXPECT_EQ(service_->Rehydrate("globex", s.id, old_nodes.ids[1], old_nodes.sealed[1]).GetStatus().Code(),
            StatusCode::kNotFound);

  auto back = service_->Rehydrate("acme", s.id, old_nodes.ids[1], old_nodes.sealed[1]);
  ASSERT_TRUE(back.IsOk()) << back.GetStatus().ToString();
  EXPECT_EQ(back->content, Reasoning("old thoughts"));
  Reopen();
  auto stored = service_->GetNode("acme", s.id, old_nodes.ids[1]);
  EXPECT_FALSE(stored->purged);
  EXPECT_EQ(stored->content, Reasoning("old thoughts"));
  EXPECT_EQ(stored->sealed, old_nodes.sealed[1]);
}

TEST_F(HiddenTest, PurgeCanBeLimitedToOneTenant) {
  SessionInfo a = NewSession("acme");
  SessionInfo b = NewSession("globex");
  AppendResult ra = AppendOrDie(a, Id(), {Reasoning("a")});
  AppendResult rb = AppendOrDie(b, Id(), {Reasoning("b")});
  env_.AdvanceMicros(kHourMicros);
  EXPECT_EQ(*service_->PurgeHidden(0, std::string("globex")), 1u);
  EXPECT_FALSE(service_->GetNode("acme", a.id, ra.ids[0])->purged);
  EXPECT_TRUE(service_->GetNode("globex", b.id, rb.ids[0])->purged);
  EXPECT_EQ(service_->PurgeHidden(-1, std::nullopt).GetStatus().Code(), StatusCode::kInvalidArgument);
}

class UnsealedHiddenTest : public SessionFixture {
 protected:
  SessionOptions Options() override { return SessionOptions{}; }
};

TEST_F(UnsealedHiddenTest, WithoutAKeyHiddenNodesAreNeverPurged) {
  SessionInfo s = NewSession();
  AppendResult r = AppendOrDie(s, Id(), {Reasoning("only copy")});
  EXPECT_TRUE(r.sealed[0].empty());
  env_.AdvanceMicros(kHourMicros);
  EXPECT_EQ(*service_->PurgeHidden(0, std::nullopt), 0u);
  EXPECT_EQ(service_->GetNode("acme", s.id, r.ids[0])->content.text, "only copy");
}

}  // namespace
}  // namespace llmsync::session
