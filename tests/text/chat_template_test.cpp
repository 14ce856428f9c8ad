// Chat-template rendering, the ChatML fallback and incremental rendering: frozen text never
// changes, whatever the template does to history.
#include <filesystem>

#include <gtest/gtest.h>

#include "cli/template_json.h"
#include "template_test_util.h"
#include "text/chat_template.h"

namespace llmsync::text {
namespace {

using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

Value Message(const std::string& role, const std::string& content) {
  ValueDict d;
  d.Set(Value::String("role"), Value::String(role));
  d.Set(Value::String("content"), Value::String(content));
  return Value::Dict(std::move(d));
}

ChatTemplate MustCreate(const std::string& source, ChatTemplateOptions options = {}) {
  auto t = ChatTemplate::Create(source, std::move(options));
  EXPECT_TRUE(t.IsOk()) << t.GetStatus().ToString();
  return std::move(t).Value();
}

std::string MustRender(const ChatTemplate& t, const ValueList& messages, bool add_generation_prompt) {
  ChatRenderRequest request;
  request.messages = messages;
  request.add_generation_prompt = add_generation_prompt;
  auto text = t.Render(request);
  EXPECT_TRUE(text.IsOk()) << text.GetStatus().ToString();
  return text.IsOk() ? *text : "";
}

IncrementalSegment MustIncrement(const ChatTemplate& t, const ValueList& history, const ValueList& added,
                                 bool add_generation_prompt,
                                 std::optional<std::string> frozen = std::nullopt) {
  IncrementalRequest request;
  request.history = history;
  request.new_messages = added;
  request.add_generation_prompt = add_generation_prompt;
  request.frozen_text = std::move(frozen);
  auto segment = t.RenderIncrement(request);
  EXPECT_TRUE(segment.IsOk()) << segment.GetStatus().ToString();
  return segment.IsOk() ? *segment : IncrementalSegment{};
}

TEST(ChatTemplateTest, ChatMlFallbackWhenTheModelHasNoTemplate) {
  for (const std::optional<std::string>& source :
       {std::optional<std::string>(), std::optional<std::string>("")}) {
    auto tmpl = ChatTemplate::ForModel(source, {});
    ASSERT_TRUE(tmpl.IsOk());
    EXPECT_TRUE(tmpl->IsChatMl());
    EXPECT_EQ(
        MustRender(*tmpl, {Message("system", "Be brief."), Message("user", "Hi")}, true),
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  }
  auto own = ChatTemplate::ForModel(std::string("{{ messages | length }}"), {});
  ASSERT_TRUE(own.IsOk());
  EXPECT_FALSE(own->IsChatMl());
}

TEST(ChatTemplateTest, PassesTheVariablesTransformersPasses) {
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.strftime_now = jinja::FixedStrftime(1739525400);
  ChatTemplate t = MustCreate(
      "{{ bos_token }}|{{ eos_token }}|{{ tools }}|{{ documents }}|{{ add_generation_prompt }}|"
      "{{ strftime_now('%d %b %Y') }}|{{ date_string | default('none') }}",
      options);
  ChatRenderRequest request;
  request.messages = {Message("user", "x")};
  request.extra.Set(Value::String("date_string"), Value::String("today"));
  auto text = t.Render(request);
  ASSERT_TRUE(text.IsOk()) << text.GetStatus().ToString();
  EXPECT_EQ(*text, "<s>|</s>|None|None|False|14 Feb 2025|today");
}

TEST(ChatTemplateTest, SplitRules) {
  EXPECT_EQ(SplitNewText("AB", "ABC"), std::make_pair(std::size_t{2}, SegmentRule::kPrefixStable));
  // A trailer the template keeps after the last message: the new text goes before it.
  EXPECT_EQ(SplitNewText("<s>[U]hi[/U]<sys>T</sys>", "<s>[U]hi[/U][A]yo[/A]<sys>T</sys>"),
            std::make_pair(std::size_t{12}, SegmentRule::kInsertedBeforeTrailer));
  // The system prompt moved from the first to the last user turn: realign on the old ending.
  EXPECT_EQ(SplitNewText("<s>[INST]sys u1[/INST]a1", "<s>[INST]u1[/INST]a1[INST]sys u2[/INST]"),
            std::make_pair(std::size_t{20}, SegmentRule::kRealigned));
  // An inserted turn that reads as well one tag earlier or a character later starts at its tag...
  EXPECT_EQ(SplitNewText("A</t><sys>T</t>", "A</t><user>U</t><sys>T</t>"),
            std::make_pair(std::size_t{5}, SegmentRule::kInsertedBeforeTrailer));
  EXPECT_EQ(
      SplitNewText("<|S|><|U|>a<|END|><|S|><|BOT|>", "<|S|><|U|>a<|END|><|S|><|U|>b<|END|><|S|><|BOT|>"),
      std::make_pair(std::size_t{18}, SegmentRule::kInsertedBeforeTrailer));
  // ...unless the frozen text says where the history ends.
  EXPECT_EQ(SplitNewText("<x>hello world, this is long</x><t>", "<x>hello world, this is long</x><x>b</x><t>",
                         std::string_view("prompt<x>hello world, this is long")),
            std::make_pair(std::size_t{28}, SegmentRule::kInsertedBeforeTrailer));
  EXPECT_EQ(SplitNewText("abc", "xyz"), std::make_pair(std::size_t{0}, SegmentRule::kRewritten));
}

// DeepSeek-R1-style template: earlier assistant turns lose their <think> block when re-rendered.
constexpr const char* kStripsReasoning =
    "{{ bos_token }}{% for m in messages %}"
    "{% if m.role == 'user' %}<|User|>{{ m.content }}"
    "{% else %}{% set c = m.content %}{% if '</think>' in c %}{% set c = c.split('</think>')[-1] %}{% endif "
    "%}"
    "<|Assistant|>{{ c }}<|end|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}";

TEST(ChatTemplateTest, HistoryRewritingTemplateKeepsFrozenTextUnchanged) {
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  ChatTemplate t = MustCreate(kStripsReasoning, options);

  // Turn 1: the prompt is rendered and frozen; the model generates reasoning and an answer.
  ValueList history = {Message("user", "What is 6*7?")};
  IncrementalSegment first = MustIncrement(t, {}, history, true);
  EXPECT_EQ(first.rule, SegmentRule::kFirstRender);
  std::string generated = "6 times 7 is 42.\n</think>\n\nThe answer is 42.<|end|>";
  std::string frozen = first.text + generated;
  history.push_back(Message("assistant", "<think>\n6 times 7 is 42.\n</think>\n\nThe answer is 42."));

  // Re-rendering the whole conversation now drops the reasoning the model saw...
  ValueList all = history;
  all.push_back(Message("user", "And 6*8?"));
  std::string fresh = MustRender(t, all, true);
  EXPECT_EQ(fresh.find("6 times 7"), std::string::npos);
  EXPECT_FALSE(fresh.starts_with(frozen));

  // ...but the incremental segment only appends: the frozen text, reasoning included, stays.
  IncrementalSegment second = MustIncrement(t, history, {Message("user", "And 6*8?")}, true, frozen);
  EXPECT_EQ(second.text, "<|User|>And 6*8?<|Assistant|><think>\n");
  EXPECT_EQ(second.gap, "");
  std::string session = frozen + second.text;
  EXPECT_TRUE(session.starts_with(frozen));
  EXPECT_NE(session.find("<think>\n6 times 7 is 42.\n</think>"), std::string::npos);
  EXPECT_TRUE(session.ends_with("<|User|>And 6*8?<|Assistant|><think>\n"));
}

TEST(ChatTemplateTest, SharedDeepSeekR1TemplateKeepsFrozenReasoning) {
  std::string path = testing::ChatTemplatesDir() + "/deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared chat templates not found at " << path;
  ChatTemplateOptions options;
  options.bos_token = "<｜begin▁of▁sentence｜>";
  ChatTemplate t = MustCreate(testing::ReadTextFile(path), options);
  ValueList history = {Message("user", "Hi")};
  std::string frozen = MustIncrement(t, {}, history, true).text;
  frozen += "greeting the user\n</think>\n\nHello!<｜end▁of▁sentence｜>";
  history.push_back(Message("assistant", "<think>\ngreeting the user\n</think>\n\nHello!"));
  IncrementalSegment next = MustIncrement(t, history, {Message("user", "Bye")}, true, frozen);
  EXPECT_EQ(next.text, "<｜User｜>Bye<｜Assistant｜><think>\n");
  std::string fresh = MustRender(t, {history[0], history[1], Message("user", "Bye")}, true);
  EXPECT_EQ(fresh.find("greeting the user"), std::string::npos);                 // the template strips it
  EXPECT_NE((frozen + next.text).find("greeting the user"), std::string::npos);  // the session keeps it
}

TEST(ChatTemplateTest, RestoresTheTemplateTailMissingFromGeneratedText) {
  ChatTemplate t = ChatTemplate::ChatMl({});
  ValueList history = {Message("user", "Hi")};
  std::string frozen = MustIncrement(t, {}, history, true).text + "Hello!<|im_end|>";  // stopped at EOS
  history.push_back(Message("assistant", "Hello!"));
  IncrementalSegment next = MustIncrement(t, history, {Message("user", "Bye")}, true, frozen);
  EXPECT_EQ(next.gap, "\n");
  EXPECT_EQ(next.text, "\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(frozen + next.text, MustRender(t, {history[0], history[1], Message("user", "Bye")}, true));
}

TEST(ChatTemplateTest, SystemPromptMovedToLastUserTurn) {
  // Mistral-style: the system prompt is rendered inside the last user turn.
  ChatTemplate t = MustCreate(
      "{% set sys = messages[0].content if messages[0].role == 'system' else '' %}"
      "{% set loop_messages = messages[1:] if sys else messages %}<s>"
      "{% for m in loop_messages %}{% if m.role == 'user' %}"
      "[INST]{% if loop.last and sys %}{{ sys }}\n\n{% endif %}{{ m.content }}[/INST]"
      "{% else %}{{ m.content }}</s>{% endif %}{% endfor %}");
  // The reply to the first turn: the template now renders that turn without the system prompt.
  ValueList history = {Message("system", "Be kind."), Message("user", "Hi")};
  IncrementalSegment reply = MustIncrement(t, history, {Message("assistant", "Hello")}, false);
  EXPECT_EQ(reply.rule, SegmentRule::kRealigned);
  EXPECT_EQ(reply.text, "Hello</s>");
  // The next user turn carries the system prompt again.
  history.push_back(Message("assistant", "Hello"));
  IncrementalSegment next = MustIncrement(t, history, {Message("user", "Bye")}, false);
  EXPECT_EQ(next.rule, SegmentRule::kPrefixStable);
  EXPECT_EQ(next.text, "[INST]Be kind.\n\nBye[/INST]");
}

TEST(ChatTemplateTest, TrailerAfterTheMessagesFollowsTheNewOnes) {
  // Command-R-style: a closing instruction after all messages, then the generation prompt.
  ChatTemplate t = MustCreate(
      "{% for m in messages %}<{{ m.role }}>{{ m.content }}</turn>{% endfor %}<sys>Answer now.</turn>"
      "{% if add_generation_prompt %}<bot>{% endif %}");
  ValueList history = {Message("user", "Hi"), Message("assistant", "Hello")};
  IncrementalSegment next = MustIncrement(t, history, {Message("user", "Bye")}, true);
  EXPECT_EQ(next.rule, SegmentRule::kInsertedBeforeTrailer);
  EXPECT_EQ(next.text, "<user>Bye</turn><sys>Answer now.</turn><bot>");
}

TEST(ChatTemplateTest, HistoryThatCannotRenderAloneFallsBackToFrozenText) {
  ChatTemplate t = MustCreate(
      "{% if messages[-1].role != 'user' %}{{ raise_exception('must end with a user turn') }}{% endif %}"
      "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}");
  ValueList history = {Message("user", "Hi"), Message("assistant", "Hello")};
  IncrementalRequest request;
  request.history = history;
  request.new_messages = {Message("user", "Bye")};
  auto without = t.RenderIncrement(request);
  ASSERT_FALSE(without.IsOk());
  EXPECT_NE(without.GetStatus().Message().find("must end with a user turn"), std::string::npos);
  request.frozen_text = "[user]Hi[assistant]Hello";
  auto with = t.RenderIncrement(request);
  ASSERT_TRUE(with.IsOk()) << with.GetStatus().ToString();
  EXPECT_EQ(with->text, "[user]Bye");
}

TEST(ChatTemplateTest, TemplateFailuresPropagate) {
  ChatTemplate t =
      MustCreate("{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}");
  IncrementalRequest request;
  request.new_messages = {Message("system", "x")};
  auto r = t.RenderIncrement(request);
  ASSERT_FALSE(r.IsOk());
  EXPECT_NE(r.GetStatus().Message().find("no system"), std::string::npos);
}

TEST(ChatTemplateTest, TokenizesOnlyTheNewSegmentThroughTheInjectedEncoder) {
  ChatTemplate t = ChatTemplate::ChatMl({});
  std::vector<std::string> seen;
  EncodeFn encode = [&seen](std::string_view text) -> Result<std::vector<std::int32_t>> {
    seen.emplace_back(text);
    std::vector<std::int32_t> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  };
  IncrementalRequest request;
  request.history = {Message("user", "Hi"), Message("assistant", "Yo")};
  request.new_messages = {Message("user", "Ok")};
  request.add_generation_prompt = true;
  auto out = RenderIncrementTokens(t, request, encode);
  ASSERT_TRUE(out.IsOk()) << out.GetStatus().ToString();
  std::string expected = "<|im_start|>user\nOk<|im_end|>\n<|im_start|>assistant\n";
  EXPECT_EQ(out->segment.text, expected);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], expected);
  EXPECT_EQ(out->tokens.size(), expected.size());

  EXPECT_FALSE(TokenizeSegment("x", nullptr).IsOk());
  auto empty = TokenizeSegment("", encode);
  ASSERT_TRUE(empty.IsOk());
  EXPECT_TRUE(empty->empty());
  EncodeFn failing = [](std::string_view) -> Result<std::vector<std::int32_t>> {
    return Status::Unavailable("tokenizer down");
  };
  auto failed = RenderIncrementTokens(t, request, failing);
  ASSERT_FALSE(failed.IsOk());
  EXPECT_EQ(failed.GetStatus().Code(), StatusCode::kUnavailable);
}

// For every shared template, appending the messages of a conversation one at a time gives
// segments whose concatenation is the full rendering whenever the template is prefix-stable,
// and never loses a new user message otherwise.
TEST(ChatTemplateTest, SharedTemplatesRenderIncrementally) {
  if (!std::filesystem::is_directory(testing::ChatTemplatesDir())) {
    GTEST_SKIP() << "shared chat templates not found at " << testing::ChatTemplatesDir();
  }
  auto messages = cli::ParseJsonTemplateValue(R"([
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello! How can I help?"},
    {"role": "user", "content": "Name a color."},
    {"role": "assistant", "content": "Blue."},
    {"role": "user", "content": "Another one?"}])");
  ASSERT_TRUE(messages.IsOk());
  const ValueList& conversation = messages->AsList();
  ChatTemplateOptions options;
  options.bos_token = "<s>";
  options.eos_token = "</s>";
  options.strftime_now = jinja::FixedStrftime(1739525400);
  int stable = 0;
  int rendered = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::ChatTemplatesDir())) {
    ChatTemplate t = MustCreate(testing::ReadTextFile(entry.path().string()), options);
    ChatRenderRequest full_request;
    full_request.messages = conversation;
    full_request.tools = Value::List({});
    auto full = t.Render(full_request);
    if (!full.IsOk()) continue;  // this template rejects the conversation (checked by the diff test)
    ++rendered;
    std::string session;
    bool prefix_stable = true;
    for (std::size_t k = 0; k < conversation.size(); ++k) {
      IncrementalRequest request;
      request.history.assign(conversation.begin(), conversation.begin() + static_cast<std::ptrdiff_t>(k));
      request.new_messages = {conversation[k]};
      request.tools = Value::List({});
      if (k > 0) request.frozen_text = session;
      auto segment = t.RenderIncrement(request);
      ASSERT_TRUE(segment.IsOk()) << entry.path().filename() << " step " << k << ": "
                                  << segment.GetStatus().ToString();
      if (segment->rule != SegmentRule::kPrefixStable && segment->rule != SegmentRule::kFirstRender) {
        prefix_stable = false;
      }
      // Each segment carries its message, and opens with a tag rather than in the middle of one.
      const std::string& content = conversation[k].AsDict().FindString("content")->AsString();
      EXPECT_NE(segment->text.find(content), std::string::npos)
          << entry.path().filename() << " lost message " << k << ": " << segment->text;
      if (k > 0 && !segment->text.empty()) {
        EXPECT_TRUE(segment->text[0] == '<' || segment->text[0] == '[' || segment->text.starts_with(content))
            << entry.path().filename() << " step " << k << ": " << segment->text;
      }
      session += segment->text;
    }
    if (prefix_stable) {
      ++stable;
      EXPECT_EQ(session, *full) << entry.path().filename();
    }
  }
  std::printf("incremental: %d of %d rendering templates are prefix-stable on this conversation\n", stable,
              rendered);
  EXPECT_GT(rendered, 10);
}

}  // namespace
}  // namespace llmsync::text
