// The differential test: every template in ../shared/vectors/chat-templates rendered for every
// conversation in data/chat_cases.json (with and without add_generation_prompt) must equal what
// python3-jinja2, configured like transformers, renders -- byte for byte -- and must fail where
// Python fails (with the same message when the template calls raise_exception).
#include <ctime>
#include <map>

#include <gtest/gtest.h>

#include "cli/template_json.h"
#include "template_test_util.h"
#include "text/chat_template.h"

namespace llmsync::text {
namespace {

using jinja::Value;
using testing::ChatTemplatesDir;
using testing::DescribeDifference;
using testing::ReadTextFile;
using testing::RunOracle;
using testing::TextTestsDir;

std::int64_t ParseIsoUtc(const std::string& iso) {
  std::tm tm{};
  ::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return static_cast<std::int64_t>(::timegm(&tm));
}

TEST(ChatTemplateDiffTest, EveryTemplateMatchesJinja2ForEveryConversation) {
  if (!std::filesystem::is_directory(ChatTemplatesDir())) {
    GTEST_SKIP() << "shared chat templates not found at " << ChatTemplatesDir();
  }
  std::string cases_path = TextTestsDir() + "/data/chat_cases.json";
  testing::OracleRun oracle = RunOracle("--templates " + ChatTemplatesDir() + " --cases " + cases_path);
  if (oracle.exit_code != 0) {
    GTEST_SKIP() << testing::kSystemPython << " with jinja2 is not available (oracle exit code "
                 << oracle.exit_code << "); install python3-jinja2";
  }
  auto expected = nlohmann::ordered_json::parse(oracle.out);
  auto spec = nlohmann::ordered_json::parse(ReadTextFile(cases_path));

  ChatTemplateOptions options;
  options.bos_token = spec["bos_token"].get<std::string>();
  options.eos_token = spec["eos_token"].get<std::string>();
  options.strftime_now = jinja::FixedStrftime(ParseIsoUtc(spec["strftime_now"].get<std::string>()));
  auto tools = cli::JsonToTemplateValue(spec["tools"]);
  ASSERT_TRUE(tools.IsOk());
  std::map<std::string, const nlohmann::ordered_json*> cases;
  for (const auto& c : spec["cases"]) cases[c["name"].get<std::string>()] = &c;

  std::map<std::string, std::pair<int, int>> per_template;  // matches, total
  int matches = 0;
  int both_fail = 0;
  int reported = 0;
  const auto& results = expected["results"];
  for (const auto& r : results) {
    std::string name = r["template"].get<std::string>();
    const auto& c = *cases.at(r["case"].get<std::string>());
    std::string source = ReadTextFile(ChatTemplatesDir() + "/" + name);
    auto tmpl = ChatTemplate::Create(source, options);
    ASSERT_TRUE(tmpl.IsOk()) << name << ": " << tmpl.GetStatus().ToString();

    ChatRenderRequest request;
    auto messages = cli::JsonToTemplateValue(c["messages"]);
    ASSERT_TRUE(messages.IsOk());
    request.messages = messages->AsList();
    std::string with_tools = c.contains("with_tools") ? c["with_tools"].dump() : "";
    if (with_tools == "true") request.tools = *tools;
    if (with_tools == "\"empty\"") request.tools = Value::List({});
    if (c.contains("variables")) request.extra = cli::JsonToTemplateValue(c["variables"])->AsDict();
    request.add_generation_prompt = r["add_generation_prompt"].get<bool>();
    Result<std::string> actual = tmpl->Render(request);

    std::string label = name + " / " + r["case"].get<std::string>() +
                        (request.add_generation_prompt ? " / add_generation_prompt" : "");
    bool ok = false;
    std::string why;
    if (r["ok"].get<bool>()) {
      std::string want = r["text"].get<std::string>();
      if (!actual.IsOk()) {
        why = "C++ failed where Python rendered: " + actual.GetStatus().ToString();
      } else if (*actual != want) {
        why = DescribeDifference(want, *actual);
      } else {
        ok = true;
      }
    } else if (actual.IsOk()) {
      why = "Python raised " + r["error_type"].get<std::string>() + " (" + r["error"].get<std::string>() +
            ") but C++ rendered";
    } else if (r["error_type"] == "TemplateError" &&
               actual.GetStatus().Message().find(r["error"].get<std::string>()) == std::string::npos) {
      why = "raise_exception message differs: Python '" + r["error"].get<std::string>() + "', C++ '" +
            actual.GetStatus().Message() + "'";
    } else {
      ok = true;
      ++both_fail;
    }
    auto& counts = per_template[name];
    ++counts.second;
    if (ok) {
      ++counts.first;
      ++matches;
    } else if (++reported <= 25) {
      ADD_FAILURE() << label << ": " << why;
    }
  }
  for (const auto& [name, counts] : per_template) {
    std::printf("  %-55s %d/%d\n", name.c_str(), counts.first, counts.second);
  }
  std::printf("chat templates: %d of %zu renders match python3-jinja2 %s (%d of them fail in both)\n",
              matches, results.size(), expected["jinja2_version"].get<std::string>().c_str(), both_fail);
  EXPECT_EQ(matches, static_cast<int>(results.size()));
  EXPECT_EQ(per_template.size(), 17u);
}

// Tools as sessions freeze them: each message of a tool conversation (assistant tool_calls, tool
// results) appended one at a time with the same `tools`, as runs::Conversation::Freeze does. For
// every template whose rendering is prefix-stable, the frozen segments must add up to exactly what
// python3-jinja2 renders for the whole conversation.
TEST(ChatTemplateDiffTest, ToolConversationsFrozenIncrementallyMatchJinja2) {
  if (!std::filesystem::is_directory(ChatTemplatesDir())) {
    GTEST_SKIP() << "shared chat templates not found at " << ChatTemplatesDir();
  }
  std::string cases_path = TextTestsDir() + "/data/chat_cases.json";
  testing::OracleRun oracle = RunOracle("--templates " + ChatTemplatesDir() + " --cases " + cases_path);
  if (oracle.exit_code != 0) GTEST_SKIP() << testing::kSystemPython << " with jinja2 is not available";
  auto expected = nlohmann::ordered_json::parse(oracle.out);
  auto spec = nlohmann::ordered_json::parse(ReadTextFile(cases_path));
  ChatTemplateOptions options;
  options.bos_token = spec["bos_token"].get<std::string>();
  options.eos_token = spec["eos_token"].get<std::string>();
  options.strftime_now = jinja::FixedStrftime(ParseIsoUtc(spec["strftime_now"].get<std::string>()));
  auto tools = cli::JsonToTemplateValue(spec["tools"]);
  ASSERT_TRUE(tools.IsOk());
  std::map<std::string, const nlohmann::ordered_json*> cases;
  for (const auto& c : spec["cases"]) cases[c["name"].get<std::string>()] = &c;
  int compared = 0;
  int matched = 0;
  int rewriting = 0;
  for (const auto& r : expected["results"]) {
    const auto& c = *cases.at(r["case"].get<std::string>());
    if (!c.contains("with_tools") || c["with_tools"] != true || r["add_generation_prompt"].get<bool>() ||
        !r["ok"].get<bool>()) {
      continue;
    }
    std::string name = r["template"].get<std::string>();
    auto tmpl = ChatTemplate::Create(ReadTextFile(ChatTemplatesDir() + "/" + name), options);
    ASSERT_TRUE(tmpl.IsOk());
    jinja::ValueList messages = cli::JsonToTemplateValue(c["messages"])->AsList();
    std::string frozen;
    bool stable = true;
    bool failed = false;
    for (std::size_t i = 0; i < messages.size(); ++i) {
      IncrementalRequest req;
      req.history.assign(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(i));
      req.new_messages = {messages[i]};
      req.tools = *tools;
      if (i > 0) req.frozen_text = frozen;
      auto segment = tmpl->RenderIncrement(req);
      if (!segment.IsOk()) {
        failed = true;
        break;
      }
      stable = stable &&
               (segment->rule == SegmentRule::kFirstRender || segment->rule == SegmentRule::kPrefixStable);
      frozen += segment->text;
    }
    if (failed || !stable) {  // templates that render history differently as it grows
      ++rewriting;
      continue;
    }
    ++compared;
    std::string want = r["text"].get<std::string>();
    if (frozen == want) {
      ++matched;
    } else {
      ADD_FAILURE() << name << " / " << r["case"].get<std::string>() << ": "
                    << DescribeDifference(want, frozen);
    }
  }
  std::printf(
      "tool conversations frozen incrementally: %d of %d prefix-stable renders match python3-jinja2 "
      "(%d renders rewrite history and keep their frozen text instead)\n",
      matched, compared, rewriting);
  EXPECT_GT(compared, 0);
  EXPECT_EQ(matched, compared);
}

}  // namespace
}  // namespace llmsync::text
