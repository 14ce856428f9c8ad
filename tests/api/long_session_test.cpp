// Issue 19: long sessions. A session driven several times past its context through the native API
// keeps answering: past the budget a run compacts the branch (auto: a model-written summary;
// truncate: the oldest turns dropped), the original branch keeps every node, and the turns after a
// compaction reuse the compacted prefix from the KV cache. Without a policy the prompt past the
// context is a 400 context_length_exceeded.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "server_test_env.h"

namespace llmsync::testing {
namespace {

constexpr int kContext = 768;  // byte vocabulary: the summary instruction alone is ~250 tokens

class LongSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_ = std::make_unique<ServerTestEnv>(ServerTestEnv::TinyModel(dir_));
    api::ServerConfig config;
    config.max_context = kContext;
    ASSERT_TRUE(env_->Start(dir_.File("data"), config).IsOk());
  }
  void TearDown() override { env_->Stop(); }

  Json WaitRun(const std::string& run) {
    for (int i = 0; i < 6000; ++i) {
      auto [status, body] = env_->Get("/v1/runs/" + run);
      if (status == 200 && body["status"] != "queued" && body["status"] != "running") return body;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "run " << run << " did not finish";
    return Json();
  }
  static std::uint64_t Cached(const Json& run) {
    const Json& c = run["usage"]["cached_tokens"];
    return c.value("ram", std::uint64_t{0}) + c.value("disk", std::uint64_t{0});
  }

  // A turn that adopted a branch compacted ahead of time and prefilled in the background.
  struct Adoption {
    std::string user;      // the turn's message
    std::string previous;  // the answer before it
    std::uint64_t cached = 0;
    Json compaction;
  };
  struct Drive {
    std::vector<std::string> appended;  // every node the client appended, in order
    std::vector<Adoption> adoptions;
    std::vector<Json> compactions;
    std::vector<std::uint64_t> cached_after_compaction;  // cached tokens of the turn after the next
    std::uint64_t new_tokens = 0;
  };

  // Appends a user message and runs, `turns` times; every turn must succeed. `brief`: a short
  // message instead of a sentence.
  Drive Run(const std::string& session, int turns, bool brief = false) {
    Drive d;
    bool watch_next = false;
    auto [gs, info] = env_->Get("/v1/sessions/" + session);
    EXPECT_EQ(gs, 200) << info;
    Json head = info["head"];
    for (int t = 0; t < turns; ++t) {
      std::string text =
          brief ? "t" + std::to_string(t)
                : "turn " + std::to_string(t) + ": tell me more about the tree of nodes, please.";
      auto [as, appended] = env_->Post("/v1/sessions/" + session + "/nodes",
                                       {{"parent", head}, {"nodes", {{{"kind", "user"}, {"text", text}}}}});
      EXPECT_EQ(as, 201) << appended;
      d.appended.push_back(appended["nodes"][0]["id"].get<std::string>());
      auto [rs, started] = env_->Post("/v1/sessions/" + session + "/runs", {{"max_tokens", 8}, {"seed", t}});
      EXPECT_EQ(rs, 202) << "turn " << t << ": " << started;
      if (rs != 202) break;
      Json done = WaitRun(started["id"].get<std::string>());
      EXPECT_EQ(done["status"], "succeeded") << "turn " << t << ": " << done;
      d.appended.push_back(done["node_id"].get<std::string>());
      head = done["node_id"];
      d.new_tokens += done["usage"].value("prompt_tokens", std::uint64_t{0});
      if (watch_next) d.cached_after_compaction.push_back(Cached(done));
      watch_next = started.contains("compaction");
      if (watch_next && started["compaction"].value("ahead", false) &&
          started["compaction"]["prefill_run"].is_string() && t > 0) {
        d.adoptions.push_back(
            {d.appended[2 * t], d.appended[2 * t - 1], Cached(done), started["compaction"]});
      }
      if (watch_next) d.compactions.push_back(started["compaction"]);
    }
    return d;
  }

  // The session's nodes by id (the whole log).
  std::map<std::string, Json> Nodes(const std::string& session) {
    auto [status, diff] = env_->Get("/v1/sessions/" + session + "?since=0");
    EXPECT_EQ(status, 200) << diff;
    EXPECT_FALSE(diff.value("more", false));
    std::map<std::string, Json> nodes;
    for (const Json& n : diff["nodes"]) nodes[n["id"].get<std::string>()] = n;
    return nodes;
  }
  // The kinds along the path to `tip`, root first.
  std::vector<std::string> Kinds(const std::map<std::string, Json>& nodes, std::string tip) {
    std::vector<std::string> kinds;
    while (nodes.count(tip) != 0) {
      const Json& n = nodes.at(tip);
      kinds.insert(kinds.begin(), n["kind"].get<std::string>());
      tip = n["parent"].is_string() ? n["parent"].get<std::string>() : std::string();
    }
    return kinds;
  }
  // Every node the client appended or a run wrote is still in the session.
  void ExpectOriginalNodesKept(const std::string& session, const std::vector<std::string>& ids) {
    std::map<std::string, Json> nodes = Nodes(session);
    for (const std::string& id : ids) EXPECT_EQ(nodes.count(id), 1u) << "node " << id << " is gone";
  }

  TestDir dir_;
  std::unique_ptr<ServerTestEnv> env_;
};

std::string NewSession(ServerTestEnv& env, const Json& context) {
  auto [status, body] = env.Post("/v1/sessions", {{"context", context}});
  EXPECT_EQ(status, 201) << body;
  auto [as, appended] =
      env.Post("/v1/sessions/" + body["id"].get<std::string>() + "/nodes",
               {{"nodes", {{{"kind", "system"}, {"text", "You are a patient assistant."}}}}});
  EXPECT_EQ(as, 201) << appended;
  return body.value("id", "");
}

TEST_F(LongSessionTest, AutoPolicySummarisesOnABranchAndKeepsTheOriginal) {
  std::string s = NewSession(*env_, {{"policy", "auto"}, {"budget_tokens", 512}});
  Drive d = Run(s, 60);  // about 3x the budget in new tokens
  ASSERT_GE(d.compactions.size(), 2u);
  for (const Json& c : d.compactions) {
    EXPECT_EQ(c["policy"], "auto") << c;
    EXPECT_FALSE(c["folded"].empty()) << c;
    EXPECT_LT(c["tokens_after"].get<std::uint64_t>(), c["tokens_before"].get<std::uint64_t>()) << c;
    // Well under the budget: the target (a quarter), or for a branch compacted ahead of time the
    // target plus the turn or two written before it was adopted.
    EXPECT_LE(c["tokens_after"].get<std::uint64_t>(), 512u * 3 / 4) << c;
    EXPECT_TRUE(c["summary_run"].is_string()) << c;
    // The compacted branch: the pinned system prompt, the summary, then whole turns.
    std::vector<std::string> kinds = Kinds(Nodes(s), c["compacted_tip"].get<std::string>());
    ASSERT_GE(kinds.size(), 3u) << c;
    EXPECT_EQ(kinds[0], "system");
    EXPECT_EQ(kinds[1], "summary");
    EXPECT_EQ(kinds[2], "user");
  }
  for (std::uint64_t cached : d.cached_after_compaction) EXPECT_GT(cached, 0u);
  ExpectOriginalNodesKept(s, d.appended);
  // The export marks where the summary stands in.
  auto r = env_->Client().Get("/v1/sessions/" + s + "/export", {});
  ASSERT_TRUE(r.IsOk());
  EXPECT_NE(r->body.find("stands in for earlier turns"), std::string::npos);
}

TEST_F(LongSessionTest, AutoPolicyCompactsAheadOfTimeAndTheNextTurnAdoptsIt) {
  // Turns small against the budget, so a compacted branch leaves room for several: the session is
  // compacted in the background once two more turns would pass the budget, and a later run goes
  // on there.
  std::string s = NewSession(*env_, {{"policy", "auto"}, {"budget_tokens", kContext}});
  Drive d = Run(s, 30, true);
  std::size_t ahead = 0;
  for (const Json& c : d.compactions) {
    if (!c.value("ahead", false)) continue;
    ++ahead;
    EXPECT_TRUE(c["summary_run"].is_string()) << c;
    EXPECT_LT(c["tokens_after"].get<std::uint64_t>(), c["tokens_before"].get<std::uint64_t>()) << c;
    std::vector<std::string> kinds = Kinds(Nodes(s), c["compacted_tip"].get<std::string>());
    ASSERT_GE(kinds.size(), 3u) << c;
    EXPECT_EQ(kinds[1], "summary");
  }
  EXPECT_GE(ahead, 1u);
  for (std::uint64_t cached : d.cached_after_compaction) EXPECT_GT(cached, 0u);
  // The adopting turn finds the compacted branch's KV computed by the prefill-only run: its cached
  // prefix covers the summary and the copied turns, all but its own message (and the answer
  // before it, when that turn ended just before and was copied by this one).
  std::map<std::string, Json> nodes = Nodes(s);
  auto tokens = [&](const std::string& id) { return nodes.at(id)["n_tokens"].get<std::uint64_t>(); };
  ASSERT_GE(d.adoptions.size(), 1u);
  for (const Adoption& a : d.adoptions) {
    const std::uint64_t after = a.compaction["tokens_after"].get<std::uint64_t>();
    EXPECT_GE(a.cached + tokens(a.user) + tokens(a.previous), after) << a.compaction;
    // Its prefix through the summary at least (the pinned system prompt, then the summary): no
    // turn ran on the branch before, only the background prefill computed it there.
    std::uint64_t through_summary = 0;
    for (std::string at = a.compaction["compacted_tip"]; nodes.count(at) != 0;) {
      const Json& n = nodes.at(at);
      if (n["kind"] == "system" || n["kind"] == "summary")
        through_summary += n["n_tokens"].get<std::uint64_t>();
      at = n["parent"].is_string() ? n["parent"].get<std::string>() : std::string();
    }
    EXPECT_GE(a.cached, through_summary) << a.compaction;
    // The prefill-only run computed the branch and ended: no token, no node.
    Json prefill = WaitRun(a.compaction["prefill_run"].get<std::string>());
    EXPECT_EQ(prefill["status"], "succeeded") << prefill;
    EXPECT_TRUE(prefill["node_id"].is_null()) << prefill;
    EXPECT_EQ(prefill["usage"]["generated_tokens"], 0) << prefill;
  }
  ExpectOriginalNodesKept(s, d.appended);
}

TEST_F(LongSessionTest, TruncatePolicyDropsTheOldestTurnsWithoutAModelCall) {
  std::string s = NewSession(*env_, {{"policy", "truncate"}, {"budget_tokens", 320}});
  Drive d = Run(s, 26);
  ASSERT_GE(d.compactions.size(), 2u);
  for (const Json& c : d.compactions) {
    EXPECT_EQ(c["policy"], "truncate") << c;
    EXPECT_TRUE(c["summary_run"].is_null()) << c;
    EXPECT_LE(c["tokens_after"].get<std::uint64_t>(), 160u + 40u) << c;
  }
  for (std::uint64_t cached : d.cached_after_compaction) EXPECT_GT(cached, 0u);
  ExpectOriginalNodesKept(s, d.appended);
}

TEST_F(LongSessionTest, WithoutAPolicyThePromptPastTheContextIs400AndCompactOnRequestWorks) {
  auto [cs, created] = env_->Post("/v1/sessions", Json::object());
  ASSERT_EQ(cs, 201);
  std::string s = created["id"];
  std::string long_text(kContext + 10, 'x');
  auto [as, appended] =
      env_->Post("/v1/sessions/" + s + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", long_text}}}}});
  ASSERT_EQ(as, 201) << appended;
  auto [rs, refused] = env_->Post("/v1/sessions/" + s + "/runs", {{"max_tokens", 4}});
  EXPECT_EQ(rs, 400) << refused;
  EXPECT_EQ(refused["error"]["code"], "context_length_exceeded") << refused;
  const std::string message = refused["error"]["message"];
  EXPECT_NE(message.find("the context holds " + std::to_string(kContext)), std::string::npos) << message;

  // A bad policy is a 400 naming the field.
  auto [bs, bad] = env_->Post("/v1/sessions", {{"context", {{"policy", "sometimes"}}}});
  EXPECT_EQ(bs, 400) << bad;
  auto [bb, big] =
      env_->Post("/v1/sessions", {{"context", {{"policy", "auto"}, {"budget_tokens", 1 << 20}}}});
  EXPECT_EQ(bb, 400) << big;
  EXPECT_NE(big["error"]["message"].get<std::string>().find("budget_tokens"), std::string::npos);

  // The policy can be set later, and a metadata-only PATCH keeps it.
  std::string s2 = NewSession(*env_, Json::object());
  auto p = env_->Client().Send("PATCH", "/v1/sessions/" + s2,
                               R"({"context": {"policy": "truncate", "budget_tokens": 256}})",
                               {{"Content-Type", "application/json"}});
  ASSERT_TRUE(p.IsOk());
  EXPECT_EQ(p->status, 200) << p->body;
  auto t = env_->Client().Send("PATCH", "/v1/sessions/" + s2, R"({"metadata": {"title": "long"}})",
                               {{"Content-Type", "application/json"}});
  ASSERT_TRUE(t.IsOk());
  Json after = Json::parse(t->body, nullptr, false);
  EXPECT_EQ(after["metadata"]["title"], "long") << after;
  EXPECT_EQ(after["metadata"]["llmsync_context"]["policy"], "truncate") << after;
  std::string s3 = NewSession(*env_, Json::object());
  Drive d = Run(s3, 4);
  s2 = s3;
  // Compact on request, whatever the budget says.
  auto [ks, compacted] = env_->Post("/v1/sessions/" + s2 + "/compact", {{"context", {{"policy", "auto"}}}});
  ASSERT_EQ(ks, 200) << compacted;
  EXPECT_EQ(compacted["policy"], "auto");
  EXPECT_FALSE(compacted["folded"].empty());
  auto [gs, info] = env_->Get("/v1/sessions/" + s2);
  ASSERT_EQ(gs, 200);
  EXPECT_EQ(info["head"], compacted["compacted_tip"]) << info;
  ExpectOriginalNodesKept(s2, d.appended);
}

}  // namespace
}  // namespace llmsync::testing
