// The client library against a real server: replica sync, safe appends and run streams that
// survive connections cut at random byte offsets by a proxy, with every event delivered once.
#include "llmsync/client.h"

#include <gtest/gtest.h>

#include <thread>

#include "../api/server_test_env.h"
#include "drop_proxy.h"

namespace llmsync::testing {
namespace {

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::make_unique<ServerTestEnv>(ServerTestEnv::TinyModel(dir_));
    ASSERT_TRUE(env_->Start(dir_.File("data")).IsOk());
  }
  void TearDown() override { env_->Stop(); }

  client::ClientOptions Direct() const {
    client::ClientOptions o;
    o.port = env_->Port();
    return o;
  }
  static client::ClientOptions Through(const DropProxy& proxy) {
    client::ClientOptions o;
    o.port = proxy.Port();
    o.max_retries = 40;
    o.initial_backoff = std::chrono::milliseconds(1);
    o.max_backoff = std::chrono::milliseconds(20);
    return o;
  }

  TestDir dir_;
  std::unique_ptr<ServerTestEnv> env_;
};

TEST_F(ClientTest, ReplicaFollowsAppendsHeadsAndBranches) {
  client::Client a(Direct());
  ASSERT_TRUE(a.CreateSession().IsOk());
  auto first = a.Append("", {{"system", "Be brief."}, {"user", "Hello"}});
  ASSERT_TRUE(first.IsOk()) << first.GetStatus().ToString();
  ASSERT_EQ(first->ids.size(), 2u);
  EXPECT_EQ(a.Head(), first->ids[1]);

  client::Client b(Direct());
  ASSERT_TRUE(b.OpenSession(a.SessionId()).IsOk());
  EXPECT_EQ(b.NodeCount(), 2u);
  EXPECT_EQ(b.Head(), first->ids[1]);
  std::uint64_t seq = b.Seq();

  // A branch from the system node: b learns it by delta.
  auto branch = a.Append(first->ids[0], {{"user", "Other question"}});
  ASSERT_TRUE(branch.IsOk());
  ASSERT_TRUE(b.Sync().IsOk());
  EXPECT_GT(b.Seq(), seq);
  EXPECT_EQ(b.NodeCount(), 3u);
  EXPECT_EQ(b.Heads().size(), 2u) << "two branch tips";
  std::vector<client::Node> path = b.PathTo(branch->ids[0]);
  ASSERT_EQ(path.size(), 2u);
  EXPECT_EQ(path[0].text, "Be brief.");
  EXPECT_EQ(path[1].text, "Other question");

  // Rewind moves the head back; the other client sees it.
  ASSERT_TRUE(a.SetHead(first->ids[0]).IsOk());
  ASSERT_TRUE(b.Sync().IsOk());
  EXPECT_EQ(b.Head(), first->ids[0]);

  // Compare-and-swap against a stale head is a conflict.
  client::AppendOptions stale;
  stale.expect_head = first->ids[1];
  auto conflict = b.Append(first->ids[0], {{"user", "late"}}, stale);
  ASSERT_FALSE(conflict.IsOk());
  EXPECT_EQ(conflict.GetStatus().Code(), StatusCode::kConflict);
}

TEST_F(ClientTest, AppendRetriesThroughDroppedRepliesApplyOnce) {
  client::Client direct(Direct());
  ASSERT_TRUE(direct.CreateSession().IsOk());
  DropProxy proxy(env_->Port(), 17, 40, 600);
  client::Client flaky(Through(proxy));
  ASSERT_TRUE(flaky.OpenSession(direct.SessionId()).IsOk());
  std::string parent;
  for (int i = 0; i < 20; ++i) {
    auto r = flaky.Append(parent, {{"user", "message " + std::to_string(i)}});
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    parent = r->head;
  }
  EXPECT_GT(proxy.Cuts(), 0);
  ASSERT_TRUE(direct.Sync().IsOk());
  EXPECT_EQ(direct.NodeCount(), 20u) << "no retry appended twice";
  std::vector<client::Node> path = direct.PathTo(parent);
  ASSERT_EQ(path.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(path[i].text, "message " + std::to_string(i));
}

TEST_F(ClientTest, RunStreamSurvivesRandomCutsWithEveryEventExactlyOnce) {
  for (std::uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("proxy seed " + std::to_string(seed));
    client::Client direct(Direct());
    ASSERT_TRUE(direct.CreateSession().IsOk());
    ASSERT_TRUE(direct.Append("", {{"user", "Tell me a long story, seed " + std::to_string(seed)}}).IsOk());
    // Opened before the run exists: a finished reply could make the session larger than any cut.
    DropProxy proxy(env_->Port(), seed, 100, 1200);
    client::Client flaky(Through(proxy));
    Status opened = flaky.OpenSession(direct.SessionId());
    ASSERT_TRUE(opened.IsOk()) << opened.ToString() << " after " << proxy.Cuts() << " cuts";
    client::RunOptions ro;
    ro.max_tokens = 120;
    ro.seed = seed;
    auto run = direct.StartRun(ro);
    ASSERT_TRUE(run.IsOk()) << run.GetStatus().ToString();

    std::vector<client::RunEvent> seen;
    std::string streamed;
    client::FollowCallbacks cb;
    cb.on_event = [&](const client::RunEvent& e) { seen.push_back(e); };
    cb.on_token = [&](std::string_view t) { streamed += t; };
    auto cut = flaky.FollowRun(*run, cb);
    ASSERT_TRUE(cut.IsOk()) << cut.GetStatus().ToString();
    EXPECT_EQ(cut->status, "succeeded");
    EXPECT_GT(proxy.Cuts(), 0);
    EXPECT_GT(cut->reconnects, 0);

    std::vector<client::RunEvent> reference;
    client::FollowCallbacks ref_cb;
    ref_cb.on_event = [&](const client::RunEvent& e) { reference.push_back(e); };
    auto whole = direct.FollowRun(*run, ref_cb);
    ASSERT_TRUE(whole.IsOk());
    EXPECT_EQ(whole->reconnects, 0);

    ASSERT_EQ(seen.size(), reference.size());
    for (std::size_t i = 0; i < seen.size(); ++i) {
      EXPECT_EQ(seen[i].id, i + 1) << "ids are consecutive: nothing lost, nothing repeated";
      EXPECT_EQ(seen[i].type, reference[i].type);
      EXPECT_EQ(seen[i].data, reference[i].data);
    }
    EXPECT_EQ(cut->tokens, 120);
    EXPECT_EQ(streamed, whole->text);
    EXPECT_EQ(cut->text, whole->text);
    ASSERT_TRUE(cut->cost.has_value());
    EXPECT_EQ(cut->cost->generated, 120);
    ASSERT_TRUE(direct.Sync().IsOk());
    const client::Node* answer = direct.Find(cut->node_id);
    ASSERT_NE(answer, nullptr);
    EXPECT_EQ(answer->kind, "assistant");
  }
}

TEST_F(ClientTest, ResumesFromAGivenEventIdAndCancelsFromAnotherThread) {
  client::Client c(Direct());
  ASSERT_TRUE(c.CreateSession().IsOk());
  ASSERT_TRUE(c.Append("", {{"user", "go on forever"}}).IsOk());
  client::RunOptions ro;
  ro.max_tokens = 1500;
  auto run = c.StartRun(ro);
  ASSERT_TRUE(run.IsOk());
  std::thread canceller;
  client::FollowCallbacks cb;
  int tokens = 0;
  cb.on_token = [&](std::string_view) {
    if (++tokens == 3) canceller = std::thread([&] { EXPECT_TRUE(c.CancelRun(*run).IsOk()); });
  };
  auto r = c.FollowRun(*run, cb);
  canceller.join();
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_EQ(r->status, "cancelled");
  EXPECT_LT(r->tokens, 1500);

  std::vector<std::uint64_t> tail;
  client::FollowCallbacks tail_cb;
  tail_cb.on_event = [&](const client::RunEvent& e) { tail.push_back(e.id); };
  auto again = c.FollowRun(*run, tail_cb, 2);
  ASSERT_TRUE(again.IsOk());
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front(), 3u) << "resumes after the given event id";
  EXPECT_EQ(tail.back(), r->last_event_id);
}

TEST_F(ClientTest, ServerUrlsParse) {
  client::ClientOptions o;
  ASSERT_TRUE(client::ParseServerUrl("http://127.0.0.1:9000", &o).IsOk());
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.port, 9000);
  ASSERT_TRUE(client::ParseServerUrl("localhost:81/", &o).IsOk());
  EXPECT_EQ(o.host, "localhost");
  EXPECT_FALSE(client::ParseServerUrl("http://nohost", &o).IsOk());
  EXPECT_FALSE(client::ParseServerUrl("https://x:1", &o).IsOk());
}

}  // namespace
}  // namespace llmsync::testing
