// RetentionJanitor: which cutoffs a pass uses (from the Env's clock), and that the thread runs a
// pass when it starts and stops promptly.
#include "store/retention.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "base/fault_injection_env.h"
#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::TestDir;
using testing::Chain;
using testing::NamedId;
using testing::NewSession;
using testing::OpenOrDie;

constexpr std::int64_t kHour = 3600 * 1000;

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.UseManualClock(0, 100 * kHour);
    store_ = OpenOrDie(dir_.File("db"));
    ASSERT_NE(store_, nullptr);
    ASSERT_TRUE(store_->CreateSession(s_).IsOk());
    auto out = store_->Append(Chain(s_, Id(), {"q"}), nullptr);
    ASSERT_TRUE(out.IsOk());
    node_ = out->ids[0];
  }

  // A run that finished at `finished_ms` with two events.
  Id FinishedRun(const std::string& name, std::int64_t finished_ms) {
    RunRecord r;
    r.id = NamedId("run:" + name);
    r.tenant = s_.tenant;
    r.session = s_.id;
    r.from_node = node_;
    r.params = "{}";
    r.created_at_ms = finished_ms;
    r.updated_at_ms = finished_ms;
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
  TestDir dir_;
  std::unique_ptr<Store> store_;
  SessionRecord s_ = NewSession("acme", "retention");
  Id node_;
};

TEST_F(RetentionTest, APassDeletesEventsOlderThanTheRetentionByTheEnvClock) {
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

TEST_F(RetentionTest, TheThreadRunsAPassAtStartAndStopsWithoutWaitingForTheInterval) {
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

}  // namespace
}  // namespace llmsync::store
