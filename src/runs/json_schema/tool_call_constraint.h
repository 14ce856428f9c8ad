// ToolCallConstraint: the TokenConstraint for tool calls — the generated text must be one call
// written in the model family's own markup, with arguments that validate against the tool's
// parameters schema.
//
// A ToolCallGrammar lists the forms a call may take, one per allowed tool or one for all of them:
// a literal prefix, then a compact JSON object accepted by a JsonAutomaton, then the grammar's
// literal suffix, then (when end_tokens is set) one end-of-turn token, so the frozen assistant node
// ends exactly as the template would render it. For example, Hermes / Qwen:
//   prefix "<tool_call>\n", schema anyOf({"name": const f, "arguments": f's parameters}, ...),
//   suffix "\n</tool_call>", end <|im_end|>;
// functionary v3.2: one form per tool with prefix ">>>NAME\n" and schema = NAME's parameters.
// Literals may contain the text of control tokens ("[TOOL_CALLS]"): `specials` maps those texts to
// their ids, and such a token matches the literal where its text does.
//
// Parallel calls: with max_calls > 1, a call's suffix may be followed by another call, written as
// that form's `next_prefix` (the separator included: "\n<tool_call>\n{..." for Hermes, ",{..." inside
// Mistral's array), until the grammar's `close` literal ("]" for array families) and the end token.
// With max_calls == 1 the call is followed by `close` directly.
//
// Modes: `required` constrains from the first token. `auto` (free_until_marker) leaves the text
// free until it contains `marker` (the forms' common prefix), then constrains the rest of the
// call; an empty marker leaves auto output unconstrained.
//
// Masking walks the tokenizer's TokenIndex (token_index.h) from the current state: one state copy
// and byte step per trie node reached, and a dead byte (most of them in markup and keys) skips its
// whole subtree. Inside a JSON string, plain-content tokens are admitted by their character count
// (TokenIndex::AdmitPlain) and only the others are walked. End tokens and control tokens written in literals
// (specials) are judged one by one.
//
// Thread safety: one constraint per run, used by the inference thread; shared tables are immutable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runs/json_schema/json_schema.h"
#include "runs/json_schema/token_index.h"
#include "runs/token_constraint.h"

namespace llmsync::runs {

struct ToolCallForm {
  std::string prefix;                        // the first call's literal (opening markup included)
  std::string next_prefix;                   // a later call's literal (separator included)
  std::shared_ptr<const JsonSchema> schema;  // root object
};

struct ToolCallGrammar {
  std::vector<ToolCallForm> forms;
  std::string suffix;  // after each call's arguments
  std::string close;   // after the last call
  int max_calls = 1;   // > 1: parallel calls (every form needs a non-empty next_prefix)
  bool free_until_marker = false;
  std::string marker;
  std::vector<session::TokenId> end_tokens;                        // empty: done after the suffix
  std::vector<std::pair<std::string, session::TokenId>> specials;  // control tokens in literals
};

class ToolCallConstraint : public TokenConstraint {
 public:
  ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar, std::shared_ptr<const TokenIndex> index);

  void Mask(std::span<float> logits, std::int64_t remaining) override;
  bool Allows(session::TokenId token, std::int64_t remaining) const override;
  void Accept(session::TokenId token) override;
  bool Done() const override;
  // Calls completed so far (exposed for tests).
  int CallsForTest() const { return state_.calls; }

  // The state consumed `text` as a whole (exposed for tests): false when it cannot continue.
  bool FeedForTest(std::string_view text) { return Feed(state_, text); }

 private:
  // kBetween: a call is complete; another may follow (max_calls) or the close literal.
  enum class Phase { kFree, kPrefix, kJson, kSuffix, kBetween, kClose, kEnd, kDone, kDead };
  struct State {
    Phase phase = Phase::kPrefix;
    std::uint64_t alive = 0;               // kPrefix: forms still possible (bit i = form i)
    std::size_t pos = 0;                   // bytes into the prefix or the suffix
    std::size_t form = 0;                  // kJson onwards: the chosen form
    int calls = 0;                         // calls completed
    std::string window;                    // kFree: the tail that may start the marker
    std::vector<JsonAutomaton> automaton;  // kJson: one automaton (empty otherwise)
  };

  bool Feed(State& s, std::string_view bytes) const;
  bool FeedByte(State& s, unsigned char c) const;
  // The literal that opens form `i` for the next call of `s`.
  const std::string& Literal(const State& s, std::size_t i) const;
  // After the suffix or the close literal: the phase that follows.
  void AfterSuffix(State& s) const;
  void AfterClose(State& s) const;
  bool FeedToken(State& s, session::TokenId token) const;
  std::int64_t MinRemaining(const State& s) const;
  bool Allowed(const State& s, session::TokenId token, std::int64_t remaining) const;

  std::shared_ptr<const ToolCallGrammar> grammar_;
  std::shared_ptr<const TokenIndex> index_;
  std::vector<std::int64_t> form_min_;       // prefix + smallest arguments document, per form
  std::vector<std::int64_t> next_form_min_;  // next_prefix + smallest arguments document
  State state_;
  std::vector<State> levels_;  // Mask's trie-walk scratch
  std::vector<char> allow_;    // Mask's scratch, by token id
};

}  // namespace llmsync::runs
