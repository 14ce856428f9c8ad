#include "client/sse_parser.h"

#include <gtest/gtest.h>

#include <vector>

namespace llmsync::client {
namespace {

std::vector<SseEvent> ParseAll(const std::vector<std::string>& pieces) {
  SseParser p;
  std::vector<SseEvent> out;
  for (const std::string& piece : pieces) {
    p.Feed(piece, [&](const SseEvent& e) {
      out.push_back(e);
      return true;
    });
  }
  return out;
}

TEST(SseParserTest, ParsesFieldsAndMultilineData) {
  auto events = ParseAll({"id: 3\nevent: token\ndata: a\ndata: b\n\n: comment\n\ndata:x\n\n"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "3");
  EXPECT_EQ(events[0].event, "token");
  EXPECT_EQ(events[0].data, "a\nb");
  EXPECT_EQ(events[1].id, "3") << "the last event id persists";
  EXPECT_EQ(events[1].event, "message");
  EXPECT_EQ(events[1].data, "x");
}

TEST(SseParserTest, HandlesEveryLineEndingAndSplitsAnywhere) {
  std::string stream = "id: 1\r\ndata: one\r\n\r\nid: 2\rdata: two\r\rid: 3\ndata: three\n\n";
  // Every split point of the byte stream gives the same events.
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    auto events = ParseAll({stream.substr(0, cut), stream.substr(cut)});
    ASSERT_EQ(events.size(), 3u) << "cut at " << cut;
    EXPECT_EQ(events[0].data, "one");
    EXPECT_EQ(events[1].data, "two");
    EXPECT_EQ(events[2].data, "three");
    EXPECT_EQ(events[2].id, "3");
  }
}

TEST(SseParserTest, EventWithoutDataIsNotDispatched) {
  auto events = ParseAll({"event: ping\n\nid: 9\n\ndata: y\n\n"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "message") << "the event name resets at a blank line";
  EXPECT_EQ(events[0].id, "9");
}

TEST(SseParserTest, CallbackCanStop) {
  SseParser p;
  int seen = 0;
  bool more = p.Feed("data: 1\n\ndata: 2\n\n", [&](const SseEvent&) { return ++seen < 1; });
  EXPECT_FALSE(more);
  EXPECT_EQ(seen, 1);
}

TEST(SseParserTest, IncompleteEventIsHeldBack) {
  SseParser p;
  int seen = 0;
  p.Feed("data: partial", [&](const SseEvent&) { return ++seen > 0; });
  EXPECT_EQ(seen, 0);
  p.Feed("\n\n", [&](const SseEvent& e) {
    EXPECT_EQ(e.data, "partial");
    return ++seen > 0;
  });
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace llmsync::client
