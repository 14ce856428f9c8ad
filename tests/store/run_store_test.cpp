// Runs and run events in the store (SQLite and Redis): records, status compare-and-swap, filters, event ids,
// group-committed and asynchronous event appends, the writer-thread guard, deletion and retention.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "base/fault_injection_env.h"
#include "store/retention.h"
#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::TestDir;
using testing::Chain;
using testing::NamedId;
using testing::NewSession;
using testing::OpenOrDie;

class RunStoreTest : public testing::StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ASSERT_TRUE(store_->CreateSession(s_).IsOk());
    auto out = store_->Append(Chain(s_, Id(), {"q"}), nullptr);
    ASSERT_TRUE(out.IsOk());
    node_ = out->ids[0];
  }

  RunRecord NewRun(const std::string& name, std::int64_t created_at_ms = 10) {
    RunRecord r;
    r.id = NamedId("run:" + name);
    r.tenant = s_.tenant;
    r.session = s_.id;
    r.from_node = node_;
    r.params = "{\"max_tokens\":16}";
    r.created_at_ms = created_at_ms;
    r.updated_at_ms = created_at_ms;
    return r;
  }

  SessionRecord s_ = NewSession("acme", "runs");
  Id node_;
};

TEST_P(RunStoreTest, CreateGetAndUpdateWithStatusCompareAndSwap) {
  RunRecord run = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(run).IsOk());
  EXPECT_EQ(store_->CreateRun(run).Code(), StatusCode::kAlreadyExists);
  auto got = store_->GetRun("acme", run.id);
  ASSERT_TRUE(got.IsOk());
  EXPECT_EQ(got->status, RunStatus::kQueued);
  EXPECT_EQ(got->params, run.params);
  EXPECT_EQ(got->session, s_.id);
  EXPECT_EQ(got->from_node, node_);
  EXPECT_EQ(store_->GetRun("evil", run.id).GetStatus().Code(), StatusCode::kNotFound);

  RunUpdate start;
  start.expect_status = RunStatus::kQueued;
  start.status = RunStatus::kRunning;
  start.now_ms = 20;
  ASSERT_TRUE(store_->UpdateRun("acme", run.id, start).IsOk());
  // A second "start" loses the race.
  auto again = store_->UpdateRun("acme", run.id, start);
  ASSERT_EQ(again.GetStatus().Code(), StatusCode::kConflict);
  EXPECT_NE(again.GetStatus().Message().find("running"), std::string::npos);

  RunUpdate finish;
  finish.expect_status = RunStatus::kRunning;
  finish.status = RunStatus::kSucceeded;
  finish.result_node = node_;
  finish.usage = RunUsage{100, 60, 30, 10, 16};
  finish.now_ms = 30;
  auto done = store_->UpdateRun("acme", run.id, finish);
  ASSERT_TRUE(done.IsOk());
  EXPECT_EQ(done->status, RunStatus::kSucceeded);
  auto reread = store_->GetRun("acme", run.id);
  EXPECT_EQ(reread->usage, (RunUsage{100, 60, 30, 10, 16}));
  EXPECT_EQ(reread->result_node, node_);
  EXPECT_EQ(reread->updated_at_ms, 30);
  EXPECT_EQ(store_->UpdateRun("evil", run.id, finish).GetStatus().Code(), StatusCode::kNotFound);
}

TEST_P(RunStoreTest, CreateRunChecksSessionTenantAndNode) {
  RunRecord run = NewRun("bad");
  run.tenant = "evil";
  EXPECT_EQ(store_->CreateRun(run).Code(), StatusCode::kNotFound);
  run = NewRun("bad");
  run.from_node = NamedId("not a node");
  EXPECT_EQ(store_->CreateRun(run).Code(), StatusCode::kNotFound);
  run = NewRun("bad");
  run.session = NamedId("no session");
  EXPECT_EQ(store_->CreateRun(run).Code(), StatusCode::kNotFound);
  run = NewRun("empty-path");
  run.from_node = Id();
  EXPECT_TRUE(store_->CreateRun(run).IsOk());
}

TEST_P(RunStoreTest, ListRunsFiltersByTenantSessionAndStatus) {
  ASSERT_TRUE(store_->CreateRun(NewRun("a", 1)).IsOk());
  ASSERT_TRUE(store_->CreateRun(NewRun("b", 2)).IsOk());
  RunUpdate cancel;
  cancel.status = RunStatus::kCancelled;
  ASSERT_TRUE(store_->UpdateRun("acme", NewRun("b").id, cancel).IsOk());
  SessionRecord other = NewSession("globex", "x");
  ASSERT_TRUE(store_->CreateSession(other).IsOk());
  RunRecord foreign;
  foreign.id = NamedId("run:foreign");
  foreign.tenant = "globex";
  foreign.session = other.id;
  foreign.created_at_ms = 3;
  ASSERT_TRUE(store_->CreateRun(foreign).IsOk());

  RunFilter all;
  EXPECT_EQ(store_->ListRuns(all)->size(), 3u);
  RunFilter acme;
  acme.tenant = "acme";
  auto acme_runs = store_->ListRuns(acme);
  ASSERT_EQ(acme_runs->size(), 2u);
  EXPECT_EQ((*acme_runs)[0].id, NewRun("a").id);
  RunFilter live;
  live.statuses = {RunStatus::kQueued, RunStatus::kRunning};
  auto live_runs = store_->ListRuns(live);
  ASSERT_EQ(live_runs->size(), 2u);  // a (acme) and foreign (globex): the restart scan
  RunFilter by_session;
  by_session.tenant = "acme";
  by_session.session = s_.id;
  by_session.statuses = {RunStatus::kCancelled};
  ASSERT_EQ(store_->ListRuns(by_session)->size(), 1u);
  RunFilter bad;
  bad.session = s_.id;
  EXPECT_EQ(store_->ListRuns(bad).GetStatus().Code(), StatusCode::kInvalidArgument);
}

TEST_P(RunStoreTest, EventIdsAreMonotonicPerRun) {
  RunRecord a = NewRun("a");
  RunRecord b = NewRun("b");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  ASSERT_TRUE(store_->CreateRun(b).IsOk());
  auto ids = store_->AppendRunEvents(
      {{"acme", a.id, "token", "1"}, {"acme", b.id, "token", "x"}, {"acme", a.id, "token", "2"}});
  ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
  EXPECT_EQ(*ids, (std::vector<std::uint64_t>{1, 1, 2}));
  ids = store_->AppendRunEvents({{"acme", a.id, "done", ""}});
  EXPECT_EQ(*ids, (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(store_->GetRun("acme", a.id)->last_event_id, 3u);

  auto events = store_->ReadRunEvents("acme", a.id, 1, 10);
  ASSERT_TRUE(events.IsOk());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].event_id, 2u);
  EXPECT_EQ((*events)[0].payload, "2");
  EXPECT_EQ((*events)[1].type, "done");
  EXPECT_EQ(store_->ReadRunEvents("acme", a.id, 0, 1)->size(), 1u);
  EXPECT_EQ(store_->ReadRunEvents("evil", a.id, 0, 10).GetStatus().Code(), StatusCode::kNotFound);
}

// Retention deletes the events of runs that finished before the cutoff, and nothing else.
TEST_P(RunStoreTest, PruneRunEventsKeepsRecentAndUnfinishedRuns) {
  auto finish_at = [&](const RunRecord& run, RunStatus status, std::int64_t now_ms) {
    RunUpdate u;
    u.status = status;
    u.now_ms = now_ms;
    ASSERT_TRUE(store_->UpdateRun("acme", run.id, u).IsOk());
  };
  RunRecord old_done = NewRun("old-done");
  RunRecord old_failed = NewRun("old-failed");
  RunRecord old_running = NewRun("old-running");
  RunRecord recent_done = NewRun("recent-done");
  for (const RunRecord* r : {&old_done, &old_failed, &old_running, &recent_done}) {
    ASSERT_TRUE(store_->CreateRun(*r).IsOk());
    ASSERT_TRUE(
        store_->AppendRunEvents({{"acme", r->id, "token", "a"}, {"acme", r->id, "token", "b"}}).IsOk());
  }
  finish_at(old_done, RunStatus::kSucceeded, 100);
  finish_at(old_failed, RunStatus::kFailed, 150);
  finish_at(old_running, RunStatus::kRunning, 100);
  finish_at(recent_done, RunStatus::kCancelled, 300);

  auto pruned = store_->PruneRunEvents(200);
  ASSERT_TRUE(pruned.IsOk()) << pruned.GetStatus().ToString();
  EXPECT_EQ(*pruned, 4u);
  EXPECT_TRUE(store_->ReadRunEvents("acme", old_done.id, 0, 10)->empty());
  EXPECT_TRUE(store_->ReadRunEvents("acme", old_failed.id, 0, 10)->empty());
  EXPECT_EQ(store_->ReadRunEvents("acme", old_running.id, 0, 10)->size(), 2u);
  EXPECT_EQ(store_->ReadRunEvents("acme", recent_done.id, 0, 10)->size(), 2u);
  // The records stay, with their status and the id of their last event.
  auto record = store_->GetRun("acme", old_done.id);
  ASSERT_TRUE(record.IsOk());
  EXPECT_EQ(record->status, RunStatus::kSucceeded);
  EXPECT_EQ(record->last_event_id, 2u);
  EXPECT_EQ(*store_->PruneRunEvents(200), 0u);
}

// A deleted run is gone for every reader, while the writes that finish it still work.
TEST_P(RunStoreTest, DeleteRunHidesTheRunAndDeletesItsEvents) {
  RunRecord run = NewRun("doomed");
  RunRecord kept = NewRun("kept");
  ASSERT_TRUE(store_->CreateRun(run).IsOk());
  ASSERT_TRUE(store_->CreateRun(kept).IsOk());
  ASSERT_TRUE(store_->AppendRunEvents({{"acme", run.id, "token", "a"}}).IsOk());
  EXPECT_EQ(store_->DeleteRun("evil", run.id).Code(), StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteRun("acme", run.id).IsOk());
  EXPECT_EQ(store_->DeleteRun("acme", run.id).Code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetRun("acme", run.id).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadRunEvents("acme", run.id, 0, 10).GetStatus().Code(), StatusCode::kNotFound);
  RunFilter all;
  all.tenant = "acme";
  auto listed = store_->ListRuns(all);
  ASSERT_TRUE(listed.IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id, kept.id);
  EXPECT_EQ(store_->CreateRun(run).Code(), StatusCode::kAlreadyExists) << "the id is never reused";
  // The scheduler can still finish it; a late event is removed by the next retention pass.
  RunUpdate cancel;
  cancel.status = RunStatus::kCancelled;
  cancel.now_ms = 50;
  EXPECT_TRUE(store_->UpdateRun("acme", run.id, cancel).IsOk());
  ASSERT_TRUE(store_->AppendRunEvents({{"acme", run.id, "run.cancelled", ""}}).IsOk());
  EXPECT_EQ(*store_->PruneRunEvents(0), 1u);
}

// RetentionJanitor takes its cutoffs from the Env's clock, and its thread runs a pass at Start
// and stops without waiting out the interval.
class RetentionJanitorTest : public RunStoreTest {
 protected:
  static constexpr std::int64_t kHour = 3600 * 1000;
  void SetUp() override {
    RunStoreTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    env_.UseManualClock(0, 100 * kHour);
  }
  // A run that finished at `finished_ms` with two events.
  Id FinishedRun(const std::string& name, std::int64_t finished_ms) {
    RunRecord r = NewRun(name, finished_ms);
    EXPECT_TRUE(store_->CreateRun(r).IsOk());
    EXPECT_TRUE(store_->AppendRunEvents({{"acme", r.id, "token", "a"}, {"acme", r.id, "token", "b"}}).IsOk());
    RunUpdate u;
    u.status = RunStatus::kSucceeded;
    u.now_ms = finished_ms;
    EXPECT_TRUE(store_->UpdateRun("acme", r.id, u).IsOk());
    return r.id;
  }
  std::size_t EventsOf(const Id& run) { return store_->ReadRunEvents("acme", run, 0, 10)->size(); }

  FaultInjectionEnv env_{Env::Default()};
};

TEST_P(RetentionJanitorTest, APassDeletesEventsOlderThanTheRetentionByTheEnvClock) {
  RetentionPolicy policy;
  policy.event_retention_ms = 10 * kHour;
  Id old_run = FinishedRun("old", 89 * kHour);      // finished 11 h before "now"
  Id young_run = FinishedRun("young", 91 * kHour);  // 9 h before
  RetentionJanitor janitor(store_.get(), &env_, policy);
  auto pass = janitor.RunOnce();
  ASSERT_TRUE(pass.IsOk()) << pass.GetStatus().ToString();
  EXPECT_EQ(pass->events_deleted, 2u);
  EXPECT_EQ(EventsOf(old_run), 0u);
  EXPECT_EQ(EventsOf(young_run), 2u);
  env_.AdvanceMicros(2 * kHour * 1000);  // now the young run is 11 h old too
  EXPECT_EQ(janitor.RunOnce()->events_deleted, 2u);
  EXPECT_EQ(EventsOf(young_run), 0u);
}

TEST_P(RetentionJanitorTest, TheThreadRunsAPassAtStartAndStopsWithoutWaitingForTheInterval) {
  RetentionPolicy policy;
  policy.event_retention_ms = kHour;
  policy.interval_ms = 3600 * 1000;  // the test would time out if Stop waited for it
  Id old_run = FinishedRun("old", 10 * kHour);
  RetentionJanitor janitor(store_.get(), &env_, policy);
  janitor.Start();
  for (int i = 0; i < 500 && EventsOf(old_run) != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(EventsOf(old_run), 0u);
  janitor.Stop();
  janitor.Stop();  // idempotent
}

TEST_P(RunStoreTest, AnEventForAnUnknownOrForeignRunFailsTheWholeCall) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  auto bad =
      store_->AppendRunEvents({{"acme", a.id, "token", "1"}, {"acme", NamedId("ghost"), "token", "2"}});
  EXPECT_EQ(bad.GetStatus().Code(), StatusCode::kNotFound);
  auto foreign = store_->AppendRunEvents({{"acme", a.id, "token", "1"}, {"evil", a.id, "token", "2"}});
  EXPECT_EQ(foreign.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->ReadRunEvents("acme", a.id, 0, 10)->empty());
  EXPECT_EQ(store_->GetRun("acme", a.id)->last_event_id, 0u);
  EXPECT_TRUE(store_->AppendRunEvents({})->empty());
}

TEST_P(RunStoreTest, ConcurrentEventAppendsGetDistinctContiguousIds) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::mutex mu;
  std::set<std::uint64_t> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto ids =
            store_->AppendRunEvents({{"acme", a.id, "token", std::to_string(t) + ":" + std::to_string(i)}});
        ASSERT_TRUE(ids.IsOk());
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(seen.insert(ids->at(0)).second);
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(seen.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(*seen.begin(), 1u);
  EXPECT_EQ(*seen.rbegin(), static_cast<std::uint64_t>(kThreads * kPerThread));
  auto events = store_->ReadRunEvents("acme", a.id, 0, 1000);
  ASSERT_EQ(events->size(), seen.size());
  // Each thread's own events appear in the order it appended them.
  std::vector<int> next(kThreads, 0);
  for (const RunEvent& e : *events) {
    int t = std::stoi(e.payload.substr(0, e.payload.find(':')));
    int i = std::stoi(e.payload.substr(e.payload.find(':') + 1));
    EXPECT_EQ(i, next[t]++);
  }
}

TEST_P(RunStoreTest, AsyncEventAppendsReportIdsOnceDurable) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::uint64_t> acked;
  Status failure;
  constexpr int kCalls = 200;
  for (int i = 0; i < kCalls; ++i) {
    store_->AppendRunEventsAsync({{"acme", a.id, "token", std::to_string(i)}},
                                 [&](Result<std::vector<std::uint64_t>> ids) {
                                   std::lock_guard<std::mutex> lock(mu);
                                   if (ids.IsOk()) {
                                     acked.push_back(ids->at(0));
                                   } else {
                                     failure = ids.GetStatus();
                                   }
                                   cv.notify_all();
                                 });
  }
  store_->AppendRunEventsAsync({{"acme", NamedId("ghost"), "token", "x"}},
                               [&](Result<std::vector<std::uint64_t>> r) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 failure = r.GetStatus();
                                 cv.notify_all();
                               });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return acked.size() == kCalls && !failure.IsOk(); });
  }
  EXPECT_EQ(failure.Code(), StatusCode::kNotFound);
  for (int i = 0; i < kCalls; ++i)
    EXPECT_EQ(acked[i], static_cast<std::uint64_t>(i + 1));  // submission order
  auto events = store_->ReadRunEvents("acme", a.id, 0, 1000);
  ASSERT_EQ(events->size(), static_cast<std::size_t>(kCalls));
  EXPECT_EQ(events->back().payload, std::to_string(kCalls - 1));
}

// Issue 17: a run's terminal events commit with its status (RunUpdate::events), after every event
// queued before the update, including asynchronous ones not yet flushed.
TEST_P(RunStoreTest, UpdateRunAppendsItsEventsInTheSameTransactionAfterQueuedOnes) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  for (int i = 0; i < 50; ++i) {
    store_->AppendRunEventsAsync({{"acme", a.id, "token", std::to_string(i)}}, [](auto) {});
  }
  RunUpdate finish;
  finish.status = RunStatus::kSucceeded;
  finish.now_ms = 77;
  finish.events = {{"acme", a.id, "run.usage", "u"}, {"acme", a.id, "run.completed", "c"}};
  auto updated = store_->UpdateRun("acme", a.id, finish);
  ASSERT_TRUE(updated.IsOk()) << updated.GetStatus().ToString();
  EXPECT_EQ(updated->status, RunStatus::kSucceeded);
  EXPECT_EQ(updated->last_event_id, 52u);
  auto events = store_->ReadRunEvents("acme", a.id, 0, 1000);
  ASSERT_TRUE(events.IsOk());
  ASSERT_EQ(events->size(), 52u);
  for (std::size_t i = 0; i < events->size(); ++i) EXPECT_EQ((*events)[i].event_id, i + 1);
  EXPECT_EQ((*events)[50].type, "run.usage");
  EXPECT_EQ((*events)[51].type, "run.completed");
  EXPECT_EQ(store_->GetRun("acme", a.id)->last_event_id, 52u);
  // Later events continue the ids.
  auto more = store_->AppendRunEvents({{"acme", a.id, "late", "x"}});
  ASSERT_TRUE(more.IsOk());
  EXPECT_EQ(more->at(0), 53u);

  // A compare-and-swap that fails writes neither the status nor the events.
  RunRecord b = NewRun("b");
  ASSERT_TRUE(store_->CreateRun(b).IsOk());
  RunUpdate cas;
  cas.expect_status = RunStatus::kRunning;
  cas.status = RunStatus::kCancelled;
  cas.events = {{"acme", b.id, "run.cancelled", "{}"}};
  EXPECT_EQ(store_->UpdateRun("acme", b.id, cas).GetStatus().Code(), StatusCode::kConflict);
  EXPECT_TRUE(store_->ReadRunEvents("acme", b.id, 0, 10)->empty());
  EXPECT_EQ(store_->GetRun("acme", b.id)->status, RunStatus::kQueued);
  // Events must belong to the updated run.
  RunUpdate foreign;
  foreign.status = RunStatus::kCancelled;
  foreign.events = {{"acme", a.id, "run.cancelled", "{}"}};
  EXPECT_EQ(store_->UpdateRun("acme", b.id, foreign).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->GetRun("acme", b.id)->status, RunStatus::kQueued);
}

TEST_P(RunStoreTest, BlockingWriteFromTheWriterThreadFailsInsteadOfDeadlocking) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  std::mutex mu;
  std::condition_variable cv;
  bool called = false;
  Status nested;
  store_->AppendRunEventsAsync({{"acme", a.id, "token", "x"}}, [&](Result<std::vector<std::uint64_t>>) {
    Status s = store_->CreateSession(NewSession("acme", "from-callback"));
    std::lock_guard<std::mutex> lock(mu);
    nested = s;
    called = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return called; });
  EXPECT_EQ(nested.Code(), StatusCode::kInternal);
}

TEST_P(RunStoreTest, EventsSurviveReopenAndIdsContinue) {
  RunRecord a = NewRun("a");
  ASSERT_TRUE(store_->CreateRun(a).IsOk());
  ASSERT_TRUE(store_->AppendRunEvents({{"acme", a.id, "token", "1"}, {"acme", a.id, "token", "2"}}).IsOk());
  Reopen();
  auto ids = store_->AppendRunEvents({{"acme", a.id, "token", "3"}});
  ASSERT_TRUE(ids.IsOk());
  EXPECT_EQ(ids->at(0), 3u);
  EXPECT_EQ(store_->ReadRunEvents("acme", a.id, 0, 10)->size(), 3u);
}

LLMSYNC_STORE_BACKENDS(RunStoreTest);
LLMSYNC_STORE_BACKENDS(RetentionJanitorTest);

// Another process holding the database's write lock makes writes fail with kUnavailable once
// busy_timeout_ms has passed, instead of hanging; queued events fail too, and everything works
// again once the lock is released.
TEST(LockedStoreTest, WritesFailUnavailableWhileAnotherProcessHoldsTheLockAndRecover) {
  TestDir dir;
  SqliteStoreOptions options;
  options.path = dir.File("db");
  options.busy_timeout_ms = 20;
  auto opened = OpenSqliteStore(options);
  ASSERT_TRUE(opened.IsOk());
  Store& store = **opened;
  SessionRecord s = NewSession("acme", "locked");
  ASSERT_TRUE(store.CreateSession(s).IsOk());
  RunRecord run;
  run.id = NamedId("run");
  run.tenant = "acme";
  run.session = s.id;
  ASSERT_TRUE(store.CreateRun(run).IsOk());

  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(store.Append(Chain(s, Id(), {"x"}), nullptr).GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_EQ(store.AppendRunEvents({{"acme", run.id, "token", "1"}}).GetStatus().Code(),
            StatusCode::kUnavailable);
  EXPECT_TRUE(store.GetSession("acme", s.id).IsOk());  // readers are not blocked
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  EXPECT_TRUE(store.Append(Chain(s, Id(), {"x"}), nullptr).IsOk());
  auto ids = store.AppendRunEvents({{"acme", run.id, "token", "2"}});
  ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
  EXPECT_EQ(ids->at(0), 1u);
}

}  // namespace
}  // namespace llmsync::store
