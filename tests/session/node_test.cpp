// Node ids and the canonical encoding, checked against an independent Python computation.
#include "session/node.h"

#include <gtest/gtest.h>

namespace llmsync::session {
namespace {

NodeContent SystemPrompt() {
  NodeContent c;
  c.kind = NodeKind::kSystem;
  c.text = "You are helpful.";
  c.tokens = {1, 2, 3};
  return c;
}

NodeContent HiddenToolCall() {
  NodeContent c;
  c.kind = NodeKind::kToolCall;
  c.visibility = Visibility::kHidden;
  c.text = "h\xc3\xa9llo \xe2\x9c\x93";
  c.tokens = {0, 2147483647};
  c.tool_name = "get_weather";
  c.call_id = "call_1";
  return c;
}

// Expected values from /usr/bin/python3 with hashlib and struct, following the encoding spelled
// out in node.h (not from this implementation).
TEST(NodeIdTest, MatchesIndependentComputation) {
  EXPECT_EQ(TenantRootId("acme").ToHex(), "c99a5b1be53773d15a4a27353461dcac6d41087f70e42b4e39f41e61d19f2a05");
  Id a = NodeIdFor("acme", Id(), SystemPrompt());
  EXPECT_EQ(a.ToHex(), "c3cda9d162370407a786819085479ee86bf3550a3f41f9a8125c028e283d4f7c");
  Id b = NodeIdFor("acme", a, HiddenToolCall());
  EXPECT_EQ(b.ToHex(), "caac87f90412a73023c108f6501f437002a57959dadf128c891b3b885fc9348a");
  EXPECT_EQ(ComputeNodeId(a, HiddenToolCall()), b);
}

TEST(NodeIdTest, EveryFieldAndTheParentChangeTheId) {
  const NodeContent base = HiddenToolCall();
  const Id parent = NodeIdFor("acme", Id(), SystemPrompt());
  const Id id = ComputeNodeId(parent, base);
  std::vector<NodeContent> variants(7, base);
  variants[0].kind = NodeKind::kToolResult;
  variants[1].visibility = Visibility::kPublic;
  variants[2].text += " ";
  variants[3].tokens.push_back(5);
  variants[4].tool_name = "get_weathe";
  variants[5].call_id = "call_2";
  variants[6].tokens = {2147483647, 0};
  for (const NodeContent& v : variants) EXPECT_NE(ComputeNodeId(parent, v), id);
  EXPECT_NE(ComputeNodeId(TenantRootId("acme"), base), id);
}

TEST(NodeIdTest, LengthPrefixesKeepFieldBoundariesApart) {
  NodeContent a = SystemPrompt();
  NodeContent b = SystemPrompt();
  a.tool_name = "ab";
  b.tool_name = "a";
  b.call_id = "b";
  EXPECT_NE(EncodeContent(a), EncodeContent(b));
  EXPECT_NE(NodeIdFor("t", Id(), a), NodeIdFor("t", Id(), b));
}

TEST(NodeIdTest, TenantsNeverShareIds) {
  EXPECT_NE(TenantRootId("acme"), TenantRootId("globex"));
  EXPECT_NE(NodeIdFor("acme", Id(), SystemPrompt()), NodeIdFor("globex", Id(), SystemPrompt()));
  // The tenant is length-prefixed: a trailing NUL is a different tenant.
  EXPECT_NE(TenantRootId("a"), TenantRootId(std::string_view("a\0", 2)));
}

TEST(NodeEncodingTest, RoundTripsAndRejectsMalformedBytes) {
  const NodeContent c = HiddenToolCall();
  std::string bytes = EncodeContent(c);
  auto back = DecodeContent(bytes);
  ASSERT_TRUE(back.IsOk());
  EXPECT_EQ(*back, c);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_EQ(DecodeContent(bytes.substr(0, cut)).GetStatus().Code(), StatusCode::kDataLoss) << cut;
  }
  EXPECT_FALSE(DecodeContent(bytes + "x").IsOk());
  std::string bad_kind = bytes;
  bad_kind[0] = 99;
  EXPECT_FALSE(DecodeContent(bad_kind).IsOk());
  std::string huge_count = bytes;
  // The token count sits after kind, visibility and the length-prefixed text.
  std::size_t count_at = 2 + 8 + c.text.size();
  huge_count[count_at + 7] = '\x7f';
  EXPECT_FALSE(DecodeContent(huge_count).IsOk());
}

TEST(NodeKindTest, NamesRoundTrip) {
  for (int k = 0; k < kNodeKindCount; ++k) {
    auto kind = static_cast<NodeKind>(k);
    auto parsed = ParseNodeKind(NodeKindName(kind));
    ASSERT_TRUE(parsed.IsOk());
    EXPECT_EQ(*parsed, kind);
  }
  EXPECT_EQ(NodeKindName(NodeKind::kToolResult), "tool_result");
  EXPECT_FALSE(ParseNodeKind("User").IsOk());
  EXPECT_EQ(*ParseVisibility("hidden"), Visibility::kHidden);
  EXPECT_FALSE(ParseVisibility("secret").IsOk());
}

}  // namespace
}  // namespace llmsync::session
