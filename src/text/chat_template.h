// Chat templates: a model's own `tokenizer.chat_template` rendered like Hugging Face transformers'
// apply_chat_template, plus incremental rendering for sessions whose earlier turns are frozen.
//
// Rendering passes the variables transformers passes: messages, tools (None when absent),
// documents (None), add_generation_prompt, bos_token, eos_token, and any extra variables.
//
// Incremental rendering (RenderIncrement): a session path has already been rendered and its text
// tokenized and frozen. To append new messages, the template renders the history alone (`old`)
// and the history plus the new messages (`new`, without the generation prompt), and the segment
// to append is the part of `new` that the new messages introduced:
//   1. old is a prefix of new (most templates): the segment is what follows it;
//   2. new = old[:p] + X + old[p:] (the template keeps a trailer after the last message, e.g. a
//      closing instruction): the segment is X + old[p:], so the trailer follows the new
//      messages again;
//   3. otherwise the template rewrote history (it strips earlier reasoning, or moves the system
//      prompt or tool list next to the last user message): the segment starts after the first
//      place in `new` where the longest possible tail of `old` reappears, i.e. after the history
//      as the template now renders it.
// The generation prompt, when asked for, is then appended (the difference between `new` with and
// without it). Text already frozen is never re-emitted or changed, even when the template would
// now render it differently: the frozen tokens stay what the model saw.
//
// Thread safety: a ChatTemplate is immutable; Render and RenderIncrement may run concurrently.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "text/jinja/jinja_template.h"
#include "text/jinja/jinja_value.h"

namespace llmsync::text {

struct ChatTemplateOptions {
  std::string bos_token;
  std::string eos_token;
  jinja::StrftimeFn strftime_now;  // unset: the current UTC time
  jinja::RenderLimits limits;
};

struct ChatRenderRequest {
  jinja::ValueList messages;                  // message dicts: role, content, tool_calls, ...
  jinja::Value tools = jinja::Value::None();  // a list of tool schemas, or None
  bool add_generation_prompt = false;
  jinja::ValueDict extra;  // more template variables (documents, date_string, ...)
};

struct IncrementalRequest {
  jinja::ValueList history;       // messages already rendered and frozen
  jinja::ValueList new_messages;  // messages to append
  jinja::Value tools = jinja::Value::None();
  bool add_generation_prompt = false;
  jinja::ValueDict extra;
  // The text frozen for `history`, when known. If it lacks a short whitespace tail the template
  // puts after the last history message (the "\n" after a generated "<|im_end|>": generation stops
  // at the end-of-turn token), that tail is prepended to the segment. It also tells where the
  // history ends when the rendering alone is ambiguous, and serves as the old rendering when the
  // template cannot render the history alone.
  std::optional<std::string> frozen_text;
};

enum class SegmentRule {
  kFirstRender,            // no history: the whole rendering
  kPrefixStable,           // rule 1
  kInsertedBeforeTrailer,  // rule 2
  kRealigned,              // rule 3
  kRewritten,              // nothing of the old rendering reappears: everything after the common prefix
};

struct IncrementalSegment {
  std::string text;  // what to append after the frozen text
  SegmentRule rule = SegmentRule::kPrefixStable;
  std::string gap;  // the tail restored from frozen_text (already included in text)
};

using EncodeFn = std::function<Result<std::vector<std::int32_t>>(std::string_view)>;

struct IncrementalTokens {
  IncrementalSegment segment;
  std::vector<std::int32_t> tokens;
};

// The ChatML template used when a model has none.
inline constexpr std::string_view kChatMlTemplate =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

class ChatTemplate {
 public:
  // Compiles a template; fails for syntax errors and unsupported features (naming the line).
  static Result<ChatTemplate> Create(std::string_view source, ChatTemplateOptions options);
  static ChatTemplate ChatMl(ChatTemplateOptions options);
  // The model's template when it has one (non-empty), ChatML otherwise.
  static Result<ChatTemplate> ForModel(const std::optional<std::string>& source, ChatTemplateOptions options);

  Result<std::string> Render(const ChatRenderRequest& request) const;
  Result<IncrementalSegment> RenderIncrement(const IncrementalRequest& request) const;

  bool IsChatMl() const { return is_chatml_; }
  const std::string& Source() const { return source_; }

 private:
  ChatTemplate(std::string source, jinja::Template tmpl, ChatTemplateOptions options, bool is_chatml)
      : source_(std::move(source)),
        template_(std::move(tmpl)),
        options_(std::move(options)),
        is_chatml_(is_chatml) {}

  Result<std::string> RenderMessages(const jinja::ValueList& messages, const jinja::Value& tools,
                                     bool add_generation_prompt, const jinja::ValueDict& extra) const;

  std::string source_;
  jinja::Template template_;
  ChatTemplateOptions options_;
  bool is_chatml_ = false;
};

// Tokenizes a segment with an injected tokenizer (the text module's tokenizers, or a remote one).
Result<std::vector<std::int32_t>> TokenizeSegment(std::string_view segment, const EncodeFn& encode);

// RenderIncrement followed by TokenizeSegment.
Result<IncrementalTokens> RenderIncrementTokens(const ChatTemplate& chat_template,
                                                const IncrementalRequest& request, const EncodeFn& encode);

// How the incremental rule splits `new_text` given `old_text` (both without generation prompt):
// the offset in new_text where the new messages' text starts, and which rule applied. The frozen
// text, when known, settles where the history ends when the text alone is ambiguous (rule 2).
// Exposed for tests.
std::pair<std::size_t, SegmentRule> SplitNewText(std::string_view old_text, std::string_view new_text,
                                                 std::optional<std::string_view> frozen_text = std::nullopt);

}  // namespace llmsync::text
