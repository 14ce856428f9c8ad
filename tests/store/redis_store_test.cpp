// What only the Redis store has to prove: its address syntax, the stream layout of run events,
// acknowledged writes surviving a SIGKILL of redis-server, kUnavailable during an outage with
// recovery after it, and compare-and-swap appends from separate connections and a separate
// process losing no update. (Everything the Store interface promises is in the conformance suite:
// node_store_test.cpp, run_store_test.cpp, sqlite_store_test.cpp.)
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::RedisServer;
using llmsync::testing::TestDir;
using testing::Chain;
using testing::NamedId;
using testing::NewSession;
using testing::OpenRedisOrDie;

#define SKIP_WITHOUT_REDIS()                                                              \
  if (!llmsync::testing::HaveRedisServer()) {                                             \
    GTEST_SKIP() << "redis-server not found at " << llmsync::testing::kRedisServerBinary; \
  }

TEST(RedisUrlTest, ParsesHostPortAndDb) {
  RedisStoreOptions o;
  ASSERT_TRUE(ParseRedisUrl("redis://10.0.0.5:6380/3", &o).IsOk());
  EXPECT_EQ(o.host, "10.0.0.5");
  EXPECT_EQ(o.port, 6380);
  EXPECT_EQ(o.db, 3);
  ASSERT_TRUE(ParseRedisUrl("redis://cache", &o).IsOk());
  EXPECT_EQ(o.host, "cache");
  EXPECT_EQ(o.port, 6379);
  EXPECT_EQ(o.db, 0);
  for (const char* bad :
       {"http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:1/x", "redis://h:p"}) {
    EXPECT_EQ(ParseRedisUrl(bad, &o).Code(), StatusCode::kInvalidArgument) << bad;
  }
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_REDIS();
    server_ = std::make_unique<RedisServer>(dir_.Path());
    ASSERT_TRUE(server_->Start());
    store_ = OpenRedisOrDie(server_->Url());
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->CreateSession(s_).IsOk());
  }

  RunRecord NewRun(const std::string& name) {
    RunRecord r;
    r.id = NamedId("run:" + name);
    r.tenant = s_.tenant;
    r.session = s_.id;
    return r;
  }

  TestDir dir_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<Store> store_;
  SessionRecord s_ = NewSession("acme", "redis");
};

// Last-Event-ID maps onto the stream: event n is entry "n-0".
TEST_F(RedisStoreTest, RunEventsAreAStreamKeyedByEventId) {
  RunRecord run = NewRun("stream");
  ASSERT_TRUE(store_->CreateRun(run).IsOk());
  ASSERT_TRUE(
      store_->AppendRunEvents({{"acme", run.id, "token", "a"}, {"acme", run.id, "token", "b"}}).IsOk());
  redis::ClientOptions co;
  co.port = server_->Port();
  redis::RedisClient raw(co);
  auto entries = raw.Command({"XRANGE", "llmsync:events:" + run.id.ToHex(), "-", "+"}, true);
  ASSERT_TRUE(entries.IsOk()) << entries.GetStatus().ToString();
  ASSERT_EQ(entries->elements.size(), 2u);
  EXPECT_EQ(entries->elements[0].elements[0].str, "1-0");
  EXPECT_EQ(entries->elements[1].elements[0].str, "2-0");
  auto after = raw.Command({"XREAD", "STREAMS", "llmsync:events:" + run.id.ToHex(), "1-0"}, true);
  ASSERT_TRUE(after.IsOk());
  EXPECT_EQ(after->elements[0].elements[1].elements[0].elements[0].str, "2-0");
}

// appendfsync always: everything acknowledged before a SIGKILL of redis-server is there after the
// restart, and the same store object reconnects by itself.
TEST_F(RedisStoreTest, AcknowledgedWritesSurviveRedisSigkill) {
  RunRecord run = NewRun("durable");
  ASSERT_TRUE(store_->CreateRun(run).IsOk());
  std::vector<Id> nodes;
  Id parent;
  for (int i = 0; i < 50; ++i) {
    auto out = store_->Append(Chain(s_, parent, {"n" + std::to_string(i)}), nullptr);
    ASSERT_TRUE(out.IsOk()) << out.GetStatus().ToString();
    parent = out->ids[0];
    nodes.push_back(parent);
    ASSERT_TRUE(store_->AppendRunEvents({{"acme", run.id, "token", std::to_string(i)}}).IsOk());
  }
  server_->Kill();
  ASSERT_TRUE(server_->Start());

  auto path = store_->GetPath("acme", s_.id, nodes.back());
  ASSERT_TRUE(path.IsOk()) << path.GetStatus().ToString();
  ASSERT_EQ(path->size(), nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) EXPECT_EQ((*path)[i].id, nodes[i]);
  EXPECT_EQ(store_->GetSession("acme", s_.id)->head, nodes.back());
  auto events = store_->ReadRunEvents("acme", run.id, 0, 1000);
  ASSERT_TRUE(events.IsOk());
  ASSERT_EQ(events->size(), 50u);
  for (std::size_t i = 0; i < events->size(); ++i) {
    EXPECT_EQ((*events)[i].event_id, i + 1);
    EXPECT_EQ((*events)[i].payload, std::to_string(i));
  }
  // Ids continue after the restart (the script cache is empty now: EVALSHA falls back to EVAL).
  auto next = store_->AppendRunEvents({{"acme", run.id, "token", "50"}});
  ASSERT_TRUE(next.IsOk()) << next.GetStatus().ToString();
  EXPECT_EQ(next->at(0), 51u);
}

// While Redis is down calls fail with kUnavailable (the API's 503), nothing hangs, and the store
// works again once Redis is back.
TEST_F(RedisStoreTest, AnOutageIsUnavailableAndRecovers) {
  RedisStoreOptions options;
  ASSERT_TRUE(ParseRedisUrl(server_->Url(), &options).IsOk());
  options.reconnect_budget_ms = 100;
  auto opened = OpenRedisStore(options);
  ASSERT_TRUE(opened.IsOk());
  Store& store = **opened;
  RunRecord run = NewRun("outage");
  ASSERT_TRUE(store.CreateRun(run).IsOk());
  server_->Kill();
  EXPECT_EQ(store.Append(Chain(s_, Id(), {"x"}), nullptr).GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.GetSession("acme", s_.id).GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.AppendRunEvents({{"acme", run.id, "token", "1"}}).GetStatus().Code(),
            StatusCode::kUnavailable);
  ASSERT_TRUE(server_->Start());
  EXPECT_TRUE(store.Append(Chain(s_, Id(), {"x"}), nullptr).IsOk());
  auto ids = store.AppendRunEvents({{"acme", run.id, "token", "2"}});
  ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
  EXPECT_EQ(ids->at(0), 1u);  // the failed append wrote nothing
}

// One compare-and-swap writer: appends `count` nodes at the head, retrying on conflict. Returns how
// many appends failed for another reason.
int CasWriter(Store& store, const SessionRecord& s, const std::string& name, int count) {
  int errors = 0;
  for (int i = 0; i < count;) {
    auto session = store.GetSession(s.tenant, s.id);
    if (!session.IsOk()) return errors + 1;
    AppendBatch b = Chain(s, session->head, {name + ":" + std::to_string(i)});
    b.expect_head = session->head;
    auto out = store.Append(b, nullptr);
    if (out.IsOk()) {
      ++i;
    } else if (out.GetStatus().Code() != StatusCode::kConflict) {
      ++errors;
      ++i;
    }
  }
  return errors;
}

// Writers on separate connections (two store instances in threads) and in a second process race
// on one session head: every acknowledged append is on the one chain, nothing lost or forked.
TEST_F(RedisStoreTest, ConcurrentCompareAndSwapWritersLoseNoUpdate) {
  constexpr int kPerWriter = 40;
  pid_t child = ::fork();
  if (child == 0) {
    auto own = OpenRedisOrDie(server_->Url());
    ::_exit(own == nullptr ? 100 : CasWriter(*own, s_, "process", kPerWriter));
  }
  ASSERT_GT(child, 0);
  auto other = OpenRedisOrDie(server_->Url());
  ASSERT_NE(other, nullptr);
  std::atomic<int> errors{0};
  std::thread a([&] { errors += CasWriter(*store_, s_, "a", kPerWriter); });
  std::thread b([&] { errors += CasWriter(*other, s_, "b", kPerWriter); });
  a.join();
  b.join();
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(errors.load(), 0);

  auto session = store_->GetSession("acme", s_.id);
  ASSERT_TRUE(session.IsOk());
  auto path = store_->GetPath("acme", s_.id, session->head);
  ASSERT_TRUE(path.IsOk());
  EXPECT_EQ(path->size(), 3u * kPerWriter);
  auto tips = store_->ListBranchTips("acme", s_.id, 10);
  ASSERT_TRUE(tips.IsOk());
  EXPECT_EQ(tips->size(), 1u) << "a lost update would fork the chain";
}

// An idempotency key recorded through one connection replays through another.
TEST_F(RedisStoreTest, IdempotencyKeysReplayAcrossConnections) {
  auto other = OpenRedisOrDie(server_->Url());
  ASSERT_NE(other, nullptr);
  AppendBatch b = Chain(s_, Id(), {"once"});
  b.idempotency_key = "k";
  b.request_digest = NamedId("d");
  auto first = store_->Append(b, nullptr);
  ASSERT_TRUE(first.IsOk());
  auto again = other->Append(b, nullptr);
  ASSERT_TRUE(again.IsOk());
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->ids, first->ids);
  EXPECT_EQ(again->seqs, first->seqs);
}

}  // namespace
}  // namespace llmsync::store
