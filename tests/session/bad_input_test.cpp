// Bad input never reaches the store: unknown parents, other tenants, oversize or malformed text,
// out-of-range fields. Each gets a clear Status and leaves the store exactly as it was.
#include <gtest/gtest.h>

#include "session/validate.h"
#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::Assistant;
using testing::SessionFixture;
using testing::User;

class BadInputTest : public SessionFixture {
 protected:
  SessionOptions Options() override {
    SessionOptions o = SessionFixture::Options();
    o.limits.max_text_bytes = 100;
    o.limits.max_tokens_per_node = 200;
    o.limits.max_nodes_per_append = 4;
    return o;
  }

  void SetUp() override {
    SessionFixture::SetUp();
    s_ = NewSession();
    first_ = AppendOrDie(s_, Id(), {User("hello"), Assistant("hi")});
    before_ = Snapshot();
  }

  // Everything observable about the session.
  std::string Snapshot() {
    auto diff = service_->DiffSince("acme", s_.id, 0, 1000);
    EXPECT_TRUE(diff.IsOk());
    std::string out = diff->session.head.ToHex() + "/" + std::to_string(diff->session.head_seq) + "/" +
                      std::to_string(diff->session.last_seq);
    for (const Node& n : diff->nodes) out += "|" + n.id.ToHex() + ":" + n.content.text;
    return out + "|sessions=" + std::to_string(service_->ListSessions("acme", 100)->size());
  }

  // Appends `draft` under the head and expects `code` with `fragment` in the message.
  void ExpectRejected(const NodeDraft& draft, StatusCode code, const std::string& fragment) {
    auto r = service_->Append(Request(s_, first_.head, {draft}));
    ASSERT_EQ(r.GetStatus().Code(), code) << r.GetStatus().ToString();
    EXPECT_NE(r.GetStatus().Message().find(fragment), std::string::npos) << r.GetStatus().ToString();
    EXPECT_EQ(Snapshot(), before_);
  }

  SessionInfo s_;
  AppendResult first_;
  std::string before_;
};

TEST_F(BadInputTest, UnknownParentIsNotFound) {
  Id stranger = NodeIdFor("acme", Id(), User("never appended"));
  auto r = service_->Append(Request(s_, stranger, {User("x")}));
  ASSERT_EQ(r.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_NE(r.GetStatus().Message().find(stranger.ToHex()), std::string::npos);
  EXPECT_EQ(service_->SetHead("acme", s_.id, stranger).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Path("acme", s_.id, stranger).GetStatus().Code(), StatusCode::kNotFound);
  // A node of another session of the same tenant is not a parent here either.
  SessionInfo other = NewSession();
  AppendResult there = AppendOrDie(other, Id(), {User("elsewhere")});
  EXPECT_EQ(service_->Append(Request(s_, there.ids[0], {User("x")})).GetStatus().Code(),
            StatusCode::kNotFound);
  before_ = Snapshot();  // the extra session is expected
  EXPECT_EQ(Snapshot(), before_);
}

TEST_F(BadInputTest, AnotherTenantSeesNothing) {
  AppendRequest r = Request(s_, first_.head, {User("intrusion")});
  r.tenant = "globex";
  EXPECT_EQ(service_->Append(r).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->GetSession("globex", s_.id).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->GetNode("globex", s_.id, first_.head).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->Path("globex", s_.id, first_.head).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->DiffSince("globex", s_.id, 0, 10).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->ListBranches("globex", s_.id, 10).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(service_->SetHead("globex", s_.id, Id()).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_TRUE(service_->ListSessions("globex", 10)->empty());
  EXPECT_EQ(Snapshot(), before_);
}

TEST_F(BadInputTest, OversizeTextHitsTheConfiguredLimit) {
  ExpectRejected(User(std::string(101, 'x')), StatusCode::kInvalidArgument, "101 bytes; the limit is 100");
  EXPECT_TRUE(service_->Append(Request(s_, first_.head, {User(std::string(100, 'x'))})).IsOk());
}

TEST_F(BadInputTest, InvalidUtf8IsRejectedWithItsOffset) {
  ExpectRejected(User("ok \xff then"), StatusCode::kInvalidArgument, "not valid UTF-8 (byte offset 3)");
  NodeDraft tool = User("fine");
  tool.tool_name = "\xc0\xaf";
  ExpectRejected(tool, StatusCode::kInvalidArgument, "tool_name is not valid UTF-8");
  AppendRequest r = Request(s_, first_.head, {User("x")});
  r.idempotency_key = "key\xed\xa0\x80";
  EXPECT_EQ(service_->Append(r).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Snapshot(), before_);
}

TEST_F(BadInputTest, OutOfRangeFieldsAreRejected) {
  NodeDraft negative = User("x");
  negative.tokens = {1, -5};
  ExpectRejected(negative, StatusCode::kInvalidArgument, "token 1 is negative");
  NodeDraft many = User("x");
  many.tokens.assign(201, 1);
  ExpectRejected(many, StatusCode::kInvalidArgument, "201 tokens; the limit is 200");
  NodeDraft kind = User("x");
  kind.kind = static_cast<NodeKind>(42);
  ExpectRejected(kind, StatusCode::kInvalidArgument, "unknown kind 42");
  NodeDraft visibility = User("x");
  visibility.visibility = static_cast<Visibility>(7);
  ExpectRejected(visibility, StatusCode::kInvalidArgument, "unknown visibility");

  EXPECT_EQ(service_->Append(Request(s_, first_.head, {})).GetStatus().Code(), StatusCode::kInvalidArgument);
  std::vector<NodeDraft> five(5, User("x"));
  EXPECT_EQ(service_->Append(Request(s_, first_.head, five)).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Snapshot(), before_);
}

TEST_F(BadInputTest, MalformedTenantsAreRejected) {
  EXPECT_EQ(service_->CreateSession("", testing::TestModel()).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->CreateSession("a\nb", testing::TestModel()).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->CreateSession(std::string(129, 't'), testing::TestModel()).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(service_->CreateSession("\xfe", testing::TestModel()).GetStatus().Code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Snapshot(), before_);
}

TEST(Utf8Test, AcceptsWellFormedAndRejectsEveryMalformedClass) {
  EXPECT_TRUE(ValidateUtf8("", "t").IsOk());
  EXPECT_TRUE(ValidateUtf8("plain ascii", "t").IsOk());
  EXPECT_TRUE(ValidateUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf", "t").IsOk());
  EXPECT_TRUE(ValidateUtf8(std::string_view("nul\0inside", 10), "t").IsOk());
  const char* bad[] = {
      "\x80",              // lone continuation byte
      "\xc3",              // truncated 2-byte sequence
      "\xc0\xaf",          // overlong '/'
      "\xe0\x80\xaf",      // overlong 3-byte
      "\xed\xa0\x80",      // UTF-16 surrogate
      "\xf0\x80\x80\xaf",  // overlong 4-byte
      "\xf4\x90\x80\x80",  // above U+10FFFF
      "\xf5\x80\x80\x80",  // invalid lead byte
      "\xe2\x82",          // truncated 3-byte sequence
      "\xe2\x28\xa1",      // bad continuation
  };
  for (const char* b : bad) {
    Status s = ValidateUtf8(std::string("ab") + b, "field");
    EXPECT_EQ(s.Code(), StatusCode::kInvalidArgument) << b;
    EXPECT_NE(s.Message().find("byte offset 2"), std::string::npos) << s.Message();
  }
}

}  // namespace
}  // namespace llmsync::session
