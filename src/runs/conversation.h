// Conversation: turns session nodes into the model's own chat format and frozen tokens.
//
// When nodes are appended, each draft's tokens are the model's chat template rendered
// incrementally (text/chat_template.h): the segment the new message adds after the text already
// frozen on the path. The frozen text of a path is the exact decoding of its tokens, so what the
// model saw is never re-rendered. A run's prompt is the path's tokens plus the generation prompt;
// the assistant node a run appends freezes generation prompt + generated tokens, so the next turn
// starts exactly where the KV cache ends.
//
// User content is never parsed for special tokens. When no content of the segment spells a
// special token, the segment is tokenized whole (exactly what a stateless server would feed the
// model). When one does, every verbatim occurrence of the content is tokenized as plain text and
// only the template's own scaffolding may produce control tokens.
// `template` nodes carry literal template text and are tokenized with special tokens.
//
// Node kinds map to chat messages: system, user and assistant by role; reasoning as an assistant
// message; tool_call as an assistant message with one tool call (name = tool_name, arguments =
// text, id = call_id); tool_result as a "tool" message; summary as a system message.
//
// Thread safety: immutable after construction; safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "session/node.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace llmsync::runs {

using session::TokenId;

class Conversation {
 public:
  // REQUIRES: `tokenizer` outlives the conversation.
  Conversation(const text::Tokenizer* tokenizer, text::ChatTemplate chat_template)
      : tokenizer_(tokenizer), template_(std::move(chat_template)) {}

  // Fills the tokens of `drafts` (appended in order after `path`). Drafts that already carry
  // tokens keep them. kInvalidArgument when the template rejects the conversation.
  // Cost: O(path + drafts) renders for a batch whose template renders each message from itself
  // and its predecessor (checked against one render of the whole batch); otherwise each draft is
  // rendered after the whole history (O(path x drafts)). Both give the same tokens as appending
  // the drafts one by one.
  // `tools` is the template's `tools` variable (a list of tool schemas, or None): the OpenAI views
  // freeze every node of a tool-bearing session with the same list, so the tools render where
  // the template puts them (a system block, the first user message) exactly once.
  Status Freeze(const std::vector<session::Node>& path, std::vector<session::NodeDraft>* drafts,
                const text::jinja::Value& tools = text::jinja::Value::None()) const;
  // The tokens that open the assistant's turn after `path` (empty for templates without one).
  Result<std::vector<TokenId>> GenerationPrompt(const std::vector<session::Node>& path) const;
  // The tokens of a path, in order (the prompt of a run without its generation prompt).
  static std::vector<TokenId> PathTokens(const std::vector<session::Node>& path);

  const text::Tokenizer& GetTokenizer() const { return *tokenizer_; }
  const text::ChatTemplate& GetTemplate() const { return template_; }

 private:
  Result<std::string> FrozenText(const std::vector<TokenId>& tokens) const;
  // The linear path: false (drafts unspecified) when this batch needs FreezeEach.
  Result<bool> FreezeBatch(const std::vector<session::Node>& path, std::vector<session::NodeDraft>* drafts,
                           const text::jinja::Value& tools) const;
  // The exact path: each draft rendered after the whole history and the drafts before it.
  Status FreezeEach(const std::vector<session::Node>& path, std::vector<session::NodeDraft>* drafts,
                    const text::jinja::Value& tools) const;
  // Tokenizes a rendered segment; `contents` are the user-supplied strings inside it.
  Result<std::vector<TokenId>> TokenizeSegment(std::string_view segment,
                                               const std::vector<std::string>& contents,
                                               bool at_sequence_start) const;

  const text::Tokenizer* tokenizer_;
  text::ChatTemplate template_;
};

// The chat message for a node (what the template renders).
text::jinja::Value MessageForNode(const session::NodeContent& content);

}  // namespace llmsync::runs
