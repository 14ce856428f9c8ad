// Eight threads appending to one session with compare-and-swap: no update is lost, every loser
// is told the winning head, and the session stays a single chain.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <iostream>
#include <mutex>
#include <set>
#include <thread>

#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::SessionFixture;
using testing::User;

class ConcurrencyTest : public SessionFixture {};

constexpr int kThreads = 8;

TEST_F(ConcurrencyTest, EachRoundHasExactlyOneWinnerAndSevenReportedConflicts) {
  SessionInfo s = NewSession();
  constexpr int kRounds = 20;
  Id head;  // written by the coordinator between rounds, read by everyone inside a round
  std::mutex mu;
  std::vector<int> winners_per_round(kRounds, 0);
  std::vector<std::set<Id>> reported_heads(kRounds);
  std::vector<Id> winning_id(kRounds);
  std::barrier start(kThreads + 1);
  std::barrier finish(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        start.arrive_and_wait();
        AppendRequest req = Request(s, head, {User("t" + std::to_string(t) + "r" + std::to_string(round))});
        req.expect_head = head;
        Id current;
        auto r = service_->Append(req, &current);
        {
          std::lock_guard<std::mutex> lock(mu);
          if (r.IsOk()) {
            ++winners_per_round[round];
            winning_id[round] = r->head;
          } else {
            EXPECT_EQ(r.GetStatus().Code(), StatusCode::kConflict) << r.GetStatus().ToString();
            reported_heads[round].insert(current);
          }
        }
        finish.arrive_and_wait();
      }
    });
  }
  for (int round = 0; round < kRounds; ++round) {
    start.arrive_and_wait();
    finish.arrive_and_wait();
    head = winning_id[round];
  }
  for (auto& t : threads) t.join();

  for (int round = 0; round < kRounds; ++round) {
    EXPECT_EQ(winners_per_round[round], 1) << round;
    // Every loser was told the same head: the winner's node.
    EXPECT_EQ(reported_heads[round], std::set<Id>{winning_id[round]}) << round;
  }
  auto branches = service_->ListBranches("acme", s.id, 100);
  ASSERT_EQ(branches->tips.size(), 1u);
  EXPECT_EQ(branches->head, winning_id[kRounds - 1]);
  EXPECT_EQ(service_->Path("acme", s.id, branches->head)->size(), static_cast<std::size_t>(kRounds));
}

TEST_F(ConcurrencyTest, RetryingOnConflictLosesNoUpdate) {
  SessionInfo s = NewSession();
  constexpr int kPerThread = 25;
  std::atomic<int> conflicts{0};
  std::mutex mu;
  std::set<Id> acknowledged;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto info = service_->GetSession("acme", s.id);
        ASSERT_TRUE(info.IsOk());
        Id head = info->head;
        while (true) {
          AppendRequest req = Request(s, head, {User(std::to_string(t) + "/" + std::to_string(i))});
          req.expect_head = head;
          Id current;
          auto r = service_->Append(req, &current);
          if (r.IsOk()) {
            std::lock_guard<std::mutex> lock(mu);
            acknowledged.insert(r->ids[0]);
            break;
          }
          ASSERT_EQ(r.GetStatus().Code(), StatusCode::kConflict) << r.GetStatus().ToString();
          conflicts.fetch_add(1);
          head = current;  // the conflict names the head to retry against
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  ASSERT_EQ(acknowledged.size(), static_cast<std::size_t>(kThreads * kPerThread));
  auto info = service_->GetSession("acme", s.id);
  auto path = service_->Path("acme", s.id, info->head);
  ASSERT_TRUE(path.IsOk());
  // One chain holding every acknowledged append: nothing lost, nothing forked.
  ASSERT_EQ(path->size(), acknowledged.size());
  for (const Node& n : *path) EXPECT_TRUE(acknowledged.count(n.id));
  EXPECT_EQ(service_->ListBranches("acme", s.id, 1000)->tips.size(), 1u);
  EXPECT_EQ(info->last_seq, acknowledged.size());
  std::cout << "[ConcurrencyTest] " << conflicts.load() << " conflicts reported and retried\n";
}

}  // namespace
}  // namespace llmsync::session
