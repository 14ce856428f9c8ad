// Tool calls and reasoning as canonical state in the native API, against a real server and a real
// HTTP client: a native append renders the tools into the prompt, a native run with tool_choice
// required ends in valid calls, the assistant node carries them as typed `parts` (the same call
// ids the OpenAI view reports), the client appends `tool_result` nodes and runs again, and the
// second run reuses the first run's whole prompt and output from the cache. The OpenAI view of
// the same tree shows the same calls.
#include <gtest/gtest.h>

#include <thread>

#include "server_test_env.h"

namespace llmsync::testing {
namespace {

const Json kWeatherTool = {
    {"type", "function"},
    {"function",
     {{"name", "get_weather"},
      {"parameters",
       {{"type", "object"},
        {"properties", {{"city", {{"type", "string"}, {"maxLength", 12}}}, {"unit", {{"enum", {"c", "f"}}}}}},
        {"required", {"city", "unit"}}}}}}};

class NativeToolsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = ServerTestEnv::TinyModel(dir_);
    env_ = std::make_unique<ServerTestEnv>(model_);
    Status s = env_->Start(dir_.File("data"));
    ASSERT_TRUE(s.IsOk()) << s.ToString();
  }
  void TearDown() override { env_->Stop(); }

  Json WaitRun(const std::string& run) {
    for (int i = 0; i < 3000; ++i) {
      auto [status, body] = env_->Get("/v1/runs/" + run);
      if (status == 200 && body["status"] != "queued" && body["status"] != "running") return body;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "run " << run << " did not finish";
    return Json();
  }
  // The node `id` of `session` as the native API lists it.
  Json NodeOf(const std::string& session, const std::string& id) {
    auto [status, body] = env_->Get("/v1/sessions/" + session);
    EXPECT_EQ(status, 200);
    for (const Json& n : body["nodes"]) {
      if (n["id"] == id) return n;
    }
    ADD_FAILURE() << "no node " << id;
    return Json();
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<ServerTestEnv> env_;
};

TEST_F(NativeToolsTest, ANativeRunEndsInToolCallsAndContinuesAfterToolResults) {
  auto [cs, created] = env_->Post("/v1/sessions", Json::object());
  ASSERT_EQ(cs, 201) << created;
  std::string session = created["id"];
  Json tools = Json::array({kWeatherTool});
  // The tiny model has no template: the tools arrive as the documented generic system node.
  auto [as, appended] =
      env_->Post("/v1/sessions/" + session + "/nodes",
                 {{"nodes", {{{"kind", "user"}, {"text", "Weather in Paris?"}}}}, {"tools", tools}});
  ASSERT_EQ(as, 201) << appended;
  ASSERT_EQ(appended["nodes"].size(), 2u);
  Json system = NodeOf(session, appended["nodes"][0]["id"]);
  EXPECT_EQ(system["kind"], "system");
  EXPECT_NE(system["text"].get<std::string>().find("get_weather"), std::string::npos);

  auto [rs, run] = env_->Post("/v1/sessions/" + session + "/runs", {{"tools", tools},
                                                                    {"tool_choice", "required"},
                                                                    {"parallel_tool_calls", false},
                                                                    {"max_tokens", 200},
                                                                    {"seed", 3}});
  ASSERT_EQ(rs, 202) << run;
  Json done = WaitRun(run["id"]);
  ASSERT_EQ(done["status"], "succeeded") << done;
  ASSERT_TRUE(done.contains("parts")) << done;
  std::string result = done["node_id"];
  Json node = NodeOf(session, result);
  EXPECT_EQ(node["kind"], "assistant");
  EXPECT_NE(node["text"].get<std::string>().find("<tool_call>"), std::string::npos);  // as generated
  ASSERT_TRUE(node.contains("parts")) << node;
  EXPECT_EQ(node["parts"], done["parts"]);
  ASSERT_EQ(node["parts"]["tool_calls"].size(), 1u) << node;
  Json call = node["parts"]["tool_calls"][0];
  EXPECT_EQ(call["tool_name"], "get_weather");
  Json args = Json::parse(call["arguments"].get<std::string>());
  EXPECT_TRUE(args["city"].is_string());
  EXPECT_TRUE(args["unit"] == "c" || args["unit"] == "f");
  EXPECT_EQ(node["parts"]["content"], "");
  std::uint64_t first_prompt = done["usage"]["prompt_tokens"];

  // The tool result, typed, under the call; then the next run from it.
  auto [ts, tr] =
      env_->Post("/v1/sessions/" + session + "/nodes",
                 {{"parent", result},
                  {"tools", tools},
                  {"nodes",
                   {{{"kind", "tool_result"},
                     {"text", "{\"temp\": 18}"},
                     {"metadata", {{"tool_name", "get_weather"}, {"call_id", call["call_id"]}}}}}}});
  ASSERT_EQ(ts, 201) << tr;
  ASSERT_EQ(tr["nodes"].size(), 1u);  // the generic tools node comes only at the root
  Json tool_node = NodeOf(session, tr["head"]);
  EXPECT_EQ(tool_node["kind"], "tool_result");
  EXPECT_EQ(tool_node["metadata"]["call_id"], call["call_id"]);
  auto [r2s, run2] = env_->Post("/v1/sessions/" + session + "/runs",
                                {{"tools", tools}, {"tool_choice", "none"}, {"max_tokens", 4}, {"seed", 3}});
  ASSERT_EQ(r2s, 202) << run2;
  Json done2 = WaitRun(run2["id"]);
  ASSERT_EQ(done2["status"], "succeeded") << done2;
  // The whole previous prompt and the generated call come from the cache.
  std::uint64_t cached = done2["usage"]["cached_tokens"]["ram"].get<std::uint64_t>() +
                         done2["usage"]["cached_tokens"]["disk"].get<std::uint64_t>();
  EXPECT_GE(cached, first_prompt) << done2;

  // The Responses view of the same run reports the same call, id and arguments.
  auto [gs, response] = env_->Get("/v1/responses/resp_" + run["id"].get<std::string>());
  ASSERT_EQ(gs, 200) << response;
  Json items = Json::array();
  for (const Json& item : response["output"]) {
    if (item["type"] == "function_call") items.push_back(item);
  }
  ASSERT_EQ(items.size(), 1u) << response;
  EXPECT_EQ(items[0]["call_id"], call["call_id"]);
  EXPECT_EQ(items[0]["name"], "get_weather");
  EXPECT_EQ(items[0]["arguments"], call["arguments"]);
}

TEST_F(NativeToolsTest, MalformedNativeToolFieldsAreA400NamingTheField) {
  auto [cs, created] = env_->Post("/v1/sessions", Json::object());
  ASSERT_EQ(cs, 201);
  std::string session = created["id"];
  auto [s1, b1] = env_->Post("/v1/sessions/" + session + "/nodes",
                             {{"nodes", {{{"kind", "user"}, {"text", "hi"}}}}, {"tools", "garbage"}});
  EXPECT_EQ(s1, 400);
  EXPECT_EQ(b1["error"]["param"], "tools") << b1;
  ASSERT_EQ(
      env_->Post("/v1/sessions/" + session + "/nodes", {{"nodes", {{{"kind", "user"}, {"text", "hi"}}}}})
          .first,
      201);
  auto [s2, b2] = env_->Post("/v1/sessions/" + session + "/runs",
                             {{"tools", Json::array({kWeatherTool})},
                              {"tool_choice", {{"type", "function"}, {"function", {{"name", "nope"}}}}}});
  EXPECT_EQ(s2, 400);
  EXPECT_EQ(b2["error"]["param"], "tool_choice.function.name") << b2;
  auto [s3, b3] =
      env_->Post("/v1/sessions/" + session + "/runs",
                 {{"tools", Json::array({kWeatherTool})}, {"tool_choice", "required"}, {"max_tokens", 3}});
  EXPECT_EQ(s3, 400);
  EXPECT_EQ(b3["error"]["param"], "max_tokens") << b3;
}

// reasoning_history: a re-sent assistant message without its reasoning reuses the node that has it
// (keep), or is appended as the template renders it (strip); usage reports the turns and tokens.
TEST_F(NativeToolsTest, ReasoningHistoryKeepReusesTheGeneratedNodeStripRerenders) {
  Json user = {{"role", "user"}, {"content", "What is 2+2?"}};
  auto [s1, first] = env_->Post("/v1/chat/completions", {{"messages", {user}}, {"max_tokens", 1}});
  ASSERT_EQ(s1, 200) << first;
  std::string session = first["llmsync"]["session"];
  // The user node, and under it an assistant node as a thinking model writes it.
  std::string user_node;
  auto [gs, tree] = env_->Get("/v1/sessions/" + session);
  ASSERT_EQ(gs, 200);
  for (const Json& n : tree["nodes"]) {
    if (n["kind"] == "user" && n["text"] == "What is 2+2?") user_node = n["id"];
  }
  ASSERT_FALSE(user_node.empty()) << tree;
  auto [as, appended] = env_->Post(
      "/v1/sessions/" + session + "/nodes",
      {{"parent", user_node},
       {"nodes", {{{"kind", "assistant"}, {"text", "<think>\nAdd two and two.\n</think>\n\nIt is 4."}}}}});
  ASSERT_EQ(as, 201) << appended;
  std::string thought = appended["nodes"][0]["id"];
  Json node = NodeOf(session, thought);
  ASSERT_TRUE(node.contains("parts")) << node;
  EXPECT_EQ(node["parts"]["reasoning"], "Add two and two.");
  EXPECT_EQ(node["parts"]["content"], "It is 4.");

  Json history = {
      user, {{"role", "assistant"}, {"content", "It is 4."}}, {{"role", "user"}, {"content", "And 3+3?"}}};
  auto [s2, kept] = env_->Post("/v1/chat/completions", {{"messages", history}, {"max_tokens", 1}});
  ASSERT_EQ(s2, 200) << kept;
  EXPECT_EQ(kept["llmsync"]["reused_nodes"], 2) << kept["llmsync"];  // user + the generated node
  EXPECT_EQ(kept["usage"]["reasoning_history"]["policy"], "keep");
  EXPECT_EQ(kept["usage"]["reasoning_history"]["turns"], 1);
  EXPECT_GT(kept["usage"]["reasoning_history"]["tokens"].get<int>(), 0);

  auto [s3, stripped] = env_->Post(
      "/v1/chat/completions", {{"messages", history}, {"max_tokens", 1}, {"reasoning_history", "strip"}});
  ASSERT_EQ(s3, 200) << stripped;
  EXPECT_EQ(stripped["llmsync"]["reused_nodes"], 1) << stripped["llmsync"];  // the user node only
  EXPECT_EQ(stripped["llmsync"]["appended_nodes"], 2);  // "It is 4." as rendered, and the new turn
  EXPECT_EQ(stripped["usage"]["reasoning_history"]["policy"], "strip");
  EXPECT_EQ(stripped["usage"]["reasoning_history"]["turns"], 1);
  auto [s4, again] = env_->Post("/v1/chat/completions",
                                {{"messages", history}, {"max_tokens", 1}, {"reasoning_history", "strip"}});
  ASSERT_EQ(s4, 200);
  EXPECT_EQ(again["llmsync"]["reused_nodes"], 3) << again["llmsync"];  // strip's own branch now
  auto [s5, bad] = env_->Post("/v1/chat/completions",
                              {{"messages", history}, {"max_tokens", 1}, {"reasoning_history", "drop"}});
  EXPECT_EQ(s5, 400);
  EXPECT_EQ(bad["error"]["param"], "reasoning_history") << bad;
}

// A tool list that changes between turns: the continuation misses this list's session, and the
// report names the tool that changed (or moved, or was added).
TEST_F(NativeToolsTest, AChangedToolListBetweenTurnsNamesTheTool) {
  Json time_tool = {
      {"type", "function"},
      {"function",
       {{"name", "get_time"},
        {"parameters", {{"type", "object"}, {"properties", {{"zone", {{"type", "string"}}}}}}}}}};
  Json tools = Json::array({kWeatherTool, time_tool});
  Json messages = Json::array({{{"role", "user"}, {"content", "Weather?"}}});
  auto [s1, first] = env_->Post("/v1/chat/completions", {{"messages", messages},
                                                         {"tools", tools},
                                                         {"tool_choice", "required"},
                                                         {"parallel_tool_calls", false},
                                                         {"max_tokens", 200},
                                                         {"seed", 2}});
  ASSERT_EQ(s1, 200) << first;
  Json assistant = first["choices"][0]["message"];
  messages.push_back(assistant);
  messages.push_back(
      {{"role", "tool"}, {"tool_call_id", assistant["tool_calls"][0]["id"]}, {"content", "sunny"}});
  auto next = [&](const Json& list) {
    auto [status, body] =
        env_->Post("/v1/chat/completions",
                   {{"messages", messages}, {"tools", list}, {"tool_choice", "none"}, {"max_tokens", 1}});
    EXPECT_EQ(status, 200) << body;
    return body["llmsync"]["tools_divergence"];
  };
  EXPECT_TRUE(next(tools).is_null());  // the same list: no report
  Json changed = tools;
  changed[1]["function"]["description"] = "The time, now described";
  Json d = next(changed);
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["tool"], "get_time");
  EXPECT_EQ(d["change"], "changed");
  EXPECT_EQ(d["index"], 1);
  d = next(Json::array({time_tool, kWeatherTool}));
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["tool"], "get_time");
  EXPECT_EQ(d["change"], "moved");
  d = next(Json::array({kWeatherTool}));
  ASSERT_FALSE(d.is_null());
  EXPECT_EQ(d["tool"], "get_time");
  EXPECT_EQ(d["change"], "removed");
}

}  // namespace
}  // namespace llmsync::testing
