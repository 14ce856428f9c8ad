// The store side of many processes on one Redis (issue 13), with two store objects standing for two
// processes: run leases carry epochs that fence a stale holder's appends and updates, and the
// session event feed is a stream per session whose ids follow session seqs. The SQLite store, which
// one process owns, shares no feed and has nothing to fence.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::RedisServer;
using llmsync::testing::TestDir;
using testing::NamedId;
using testing::NewSession;
using testing::OpenOrDie;
using testing::OpenRedisOrDie;

class RedisScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!llmsync::testing::HaveRedisServer())
      GTEST_SKIP() << "redis-server not found at " << llmsync::testing::kRedisServerBinary;
    server_ = std::make_unique<RedisServer>(dir_.Path());
    ASSERT_TRUE(server_->Start());
    a_ = OpenRedisOrDie(server_->Url());
    b_ = OpenRedisOrDie(server_->Url());
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    ASSERT_TRUE(a_->CreateSession(s_).IsOk());
  }

  TestDir dir_;
  std::unique_ptr<RedisServer> server_;
  std::unique_ptr<Store> a_;  // "process A"
  std::unique_ptr<Store> b_;  // "process B"
  SessionRecord s_ = NewSession("acme", "feed");
};

// Cache-aware dispatch (issue 16): engines publish load and KV directory members; a run goes to
// the live holder of the deepest member, unless its queue is over the bound; other engines leave
// an offered run to a live target and take it once the target stops beating; leases pin.
TEST_F(RedisScaleOutTest, DispatchOffersRunsToTheDeepestHolderAndClaimsFollowTheOffer) {
  auto beat = [&](Store& store, const std::string& worker, std::int64_t ttl_ms,
                  std::vector<std::string> added, std::vector<std::string> removed = {}) {
    EngineBeat b;
    b.worker = worker;
    b.ttl_ms = ttl_ms;
    b.held_added = std::move(added);
    b.held_removed = std::move(removed);
    b.held_cap = 100;
    ASSERT_TRUE(store.PublishEngine(b).IsOk());
  };
  beat(*a_, "a", 60000, {"n1:acme", "n2:acme"});
  beat(*b_, "b", 60000, {"n1:acme"});
  auto request = [&](const std::string& name) {
    DispatchRequest r;
    r.run = NamedId(name);
    r.session = s_.id;
    r.path = {"n3:acme", "n2:acme", "n1:acme"};  // deepest first
    r.depths = {300, 200, 100};
    r.queue_bound = 1;
    r.grace_ms = 60000;
    return r;
  };
  auto first = a_->DispatchRun(request("run:1"));
  ASSERT_TRUE(first.IsOk()) << first.GetStatus().ToString();
  EXPECT_EQ(first->target, "a") << "a holds n2, the deepest held member";
  EXPECT_EQ(first->reason, "cache_hit");
  EXPECT_EQ(first->matched_tokens, 200u);
  auto second = a_->DispatchRun(request("run:2"));
  ASSERT_TRUE(second.IsOk());
  EXPECT_EQ(second->target, "a") << "one run offered there: at the bound, not over it";
  auto third = a_->DispatchRun(request("run:3"));
  ASSERT_TRUE(third.IsOk());
  EXPECT_EQ(third->target, "b") << "a's queue is over the bound";
  EXPECT_EQ(third->reason, "least_loaded");
  EXPECT_EQ(third->matched_tokens, 100u) << "b holds n1";

  // The offered run is a's while a is live: b's claim is refused, a's succeeds with the reason.
  RunRecord run;
  run.id = NamedId("run:1");
  run.tenant = "acme";
  run.session = s_.id;
  ASSERT_TRUE(a_->CreateRun(run).IsOk());
  EXPECT_EQ(*b_->LeaseRun(run.id, "b", 5000, 0), 0u);
  EXPECT_EQ(*a_->LeaseRun(run.id, "a", 5000, 0), 1u);
  auto placed = b_->GetRunPlacement(run.id);
  ASSERT_TRUE(placed.IsOk());
  EXPECT_EQ(placed->engine, "a");
  EXPECT_EQ(placed->reason, "cache_hit");
  EXPECT_EQ(placed->matched_tokens, 200u);

  // run:2 is offered to a too; a stops beating (its heartbeat lapses): b takes it, as a fallback.
  RunRecord second_run = run;
  second_run.id = NamedId("run:2");
  ASSERT_TRUE(a_->CreateRun(second_run).IsOk());
  beat(*a_, "a", 100, {});
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  EXPECT_EQ(*b_->LeaseRun(second_run.id, "b", 5000, 0), 1u);
  placed = b_->GetRunPlacement(second_run.id);
  EXPECT_EQ(placed->engine, "b");
  EXPECT_EQ(placed->target, "a");
  EXPECT_EQ(placed->reason, "fallback");

  // a is not live now: the deepest live holder is b. A lease pins the session to a live engine.
  auto fourth = a_->DispatchRun(request("run:4"));
  EXPECT_EQ(fourth->target, "b");
  EXPECT_EQ(fourth->reason, "cache_hit");
  beat(*a_, "a", 60000, {});
  beat(*b_, "b", 60000, {}, {"n1:acme"});
  ASSERT_TRUE(a_->PinSession(s_.id, "a", 60000).IsOk());
  auto leased = b_->DispatchRun(request("run:5"));
  EXPECT_EQ(leased->target, "a");
  EXPECT_EQ(leased->reason, "lease");
  ASSERT_TRUE(b_->UnpinSession(s_.id, "b").IsOk()) << "not b's pin: nothing happens";
  EXPECT_EQ(b_->DispatchRun(request("run:6"))->reason, "lease");
  ASSERT_TRUE(a_->UnpinSession(s_.id, "a").IsOk());
  ASSERT_TRUE(a_->RetireEngine("a").IsOk());
  auto nobody = b_->DispatchRun(request("run:7"));
  EXPECT_EQ(nobody->target, "b") << "a retired, and b no longer holds n1";
  EXPECT_EQ(nobody->reason, "least_loaded");
}

TEST_F(RedisScaleOutTest, LeaseEpochsFenceAStaleHolder) {
  RunRecord run;
  run.id = NamedId("run:fenced");
  run.tenant = "acme";
  run.session = s_.id;
  ASSERT_TRUE(a_->CreateRun(run).IsOk());

  auto first = a_->LeaseRun(run.id, "a", 150, 0);
  ASSERT_TRUE(first.IsOk()) << first.GetStatus().ToString();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(*b_->LeaseRun(run.id, "b", 150, 0), 0u) << "A's lease is live";
  EXPECT_EQ(*a_->LeaseRun(run.id, "a", 150, 0), 0u) << "a run is claimed once, even by its holder";
  EXPECT_EQ(*a_->LeaseRun(run.id, "a", 150, 1), 1u) << "A renews at its epoch";
  ASSERT_TRUE(a_->AppendRunEvents({{"acme", run.id, "token", "a1", 1}}).IsOk());

  // A stops renewing (paused); the lease lapses and B claims the run with the next epoch.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  auto taken = b_->LeaseRun(run.id, "b", 5000, 0);
  ASSERT_TRUE(taken.IsOk());
  EXPECT_EQ(*taken, 2u);
  EXPECT_EQ(*b_->RunWorker(run.id), "b");

  // A continues: its renewal, appends and final update are all refused, and write nothing.
  EXPECT_EQ(*a_->LeaseRun(run.id, "a", 150, 1), 0u);
  auto stale = a_->AppendRunEvents({{"acme", run.id, "token", "a2", 1}});
  ASSERT_FALSE(stale.IsOk());
  EXPECT_TRUE(IsLeaseLost(stale.GetStatus())) << stale.GetStatus().ToString();
  RunUpdate finish;
  finish.status = RunStatus::kSucceeded;
  finish.lease_epoch = 1;
  finish.events = {{"acme", run.id, "run.completed", "{}", 1}};
  auto refused = a_->UpdateRun("acme", run.id, finish);
  ASSERT_FALSE(refused.IsOk());
  EXPECT_TRUE(IsLeaseLost(refused.GetStatus())) << refused.GetStatus().ToString();

  // B's writes at its epoch follow A's last durable event with no gap.
  auto ids = b_->AppendRunEvents({{"acme", run.id, "token", "b2", 2}});
  ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
  EXPECT_EQ(*ids, std::vector<std::uint64_t>{2});
  finish.lease_epoch = 2;
  for (RunEventDraft& e : finish.events) e.lease_epoch = 2;
  auto done = b_->UpdateRun("acme", run.id, finish);
  ASSERT_TRUE(done.IsOk()) << done.GetStatus().ToString();
  EXPECT_EQ(done->last_event_id, 3u);
  // A finished run takes no more fenced writes (a cancel made elsewhere ends the engine's run);
  // unfenced ones (the startup repair) still go through.
  auto late = b_->AppendRunEvents({{"acme", run.id, "token", "late", 2}});
  ASSERT_FALSE(late.IsOk());
  EXPECT_TRUE(IsLeaseLost(late.GetStatus())) << late.GetStatus().ToString();
  auto events = a_->ReadRunEvents("acme", run.id, 0, 10);
  ASSERT_TRUE(events.IsOk());
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].payload, "a1");
  EXPECT_EQ((*events)[1].payload, "b2");
  EXPECT_EQ((*events)[2].type, "run.completed");
}

TEST_F(RedisScaleOutTest, TheSessionFeedIsAStreamAnyProcessFollows) {
  ASSERT_TRUE(a_->SharesSessionEvents());
  auto start = b_->SessionFeedEnd(s_.id);
  ASSERT_TRUE(start.IsOk());
  EXPECT_EQ(*start, "0-0");

  auto e1 = a_->PublishSessionEvent(s_.id, 3, "node.appended", R"({"n":1})");
  ASSERT_TRUE(e1.IsOk()) << e1.GetStatus().ToString();
  EXPECT_EQ(e1->position, "3-0");
  EXPECT_EQ(e1->seq, 3u);
  // A lower seq (a run event, or an append that published late) is raised: seqs never go down.
  auto e2 = a_->PublishSessionEvent(s_.id, 0, "run.started", R"({"n":2})");
  ASSERT_TRUE(e2.IsOk());
  EXPECT_EQ(e2->seq, 3u);
  EXPECT_EQ(e2->position, "3-1");
  EXPECT_EQ(*b_->SessionFeedEnd(s_.id), "3-1");

  // Process B follows from where it started; a second follower from the first event's position.
  auto got = b_->WaitSessionEvents({{s_.id, *start}}, 100);
  ASSERT_TRUE(got.IsOk()) << got.GetStatus().ToString();
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].type, "node.appended");
  EXPECT_EQ((*got)[0].payload, R"({"n":1})");
  EXPECT_EQ((*got)[1].type, "run.started");
  EXPECT_EQ((*got)[1].session, s_.id);
  auto rest = b_->WaitSessionEvents({{s_.id, e1->position}}, 100);
  ASSERT_TRUE(rest.IsOk());
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].position, "3-1");

  // Waiting blocks until another process publishes.
  std::thread publisher([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    EXPECT_TRUE(a_->PublishSessionEvent(s_.id, 4, "head.moved", "{}").IsOk());
  });
  auto live = b_->WaitSessionEvents({{s_.id, e2->position}}, 5000);
  publisher.join();
  ASSERT_TRUE(live.IsOk());
  ASSERT_EQ(live->size(), 1u);
  EXPECT_EQ((*live)[0].seq, 4u);
  auto quiet = b_->WaitSessionEvents({{s_.id, (*live)[0].position}}, 50);
  ASSERT_TRUE(quiet.IsOk());
  EXPECT_TRUE(quiet->empty());

  // No feed for a session that does not exist; deleting a session deletes its feed.
  EXPECT_EQ(a_->PublishSessionEvent(NamedId("nope"), 1, "x", "{}").GetStatus().Code(), StatusCode::kNotFound);
  ASSERT_TRUE(a_->DeleteSession("acme", s_.id).IsOk());
  EXPECT_EQ(*b_->SessionFeedEnd(s_.id), "0-0");
}

TEST(SqliteScaleOutTest, ASingleProcessStoreSharesNoFeedAndFencesNothing) {
  TestDir dir;
  auto store = OpenOrDie(dir.File("db"));
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->SharesSessionEvents());
  EXPECT_EQ(store->PublishSessionEvent(NamedId("s"), 1, "x", "{}").GetStatus().Code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(*store->LeaseRun(NamedId("r"), "w", 100, 0), 1u);
}

}  // namespace
}  // namespace llmsync::store
