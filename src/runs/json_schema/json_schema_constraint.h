// JsonSchemaConstraint: the TokenConstraint for structured output — masks every token whose bytes
// would take the JSON automaton (json_schema.h) to a dead state, or leave it further from a
// complete document than the tokens the run has left.
//
// Tokens are judged by their decoded bytes (TokenBytesTable, computed once per tokenizer);
// control tokens decode to nothing and are never allowed, so end-of-generation never interrupts a
// document: the run ends when the automaton is Done. Masking walks the tokenizer's TokenIndex
// (token_index.h): one automaton copy and byte step per trie node reached, and a dead byte skips
// its whole subtree, so the cost follows the live branches, not the vocabulary size. Inside a
// string, plain-content tokens are admitted by their character count (TokenIndex::AdmitPlain) and
// only the other tokens are walked.
//
// Thread safety: one constraint per run, used by the inference thread; the shared schema and
// index are immutable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runs/json_schema/json_schema.h"
#include "runs/json_schema/token_index.h"
#include "runs/token_constraint.h"
#include "text/tokenizer.h"

namespace llmsync::runs {

// The bytes each token id decodes to on its own (control tokens: empty).
std::shared_ptr<const TokenBytes> TokenBytesTable(const text::Tokenizer& tokenizer);

class JsonSchemaConstraint : public TokenConstraint {
 public:
  // REQUIRES: the schema's root is an object (see JsonAutomaton).
  JsonSchemaConstraint(std::shared_ptr<const JsonSchema> schema, std::shared_ptr<const TokenIndex> index);

  void Mask(std::span<float> logits, std::int64_t remaining) override;
  bool Allows(session::TokenId token, std::int64_t remaining) const override;
  void Accept(session::TokenId token) override;
  bool Done() const override { return automaton_.Done(); }

 private:
  std::shared_ptr<const JsonSchema> schema_;
  std::shared_ptr<const TokenIndex> index_;
  JsonAutomaton automaton_;
  std::vector<JsonAutomaton> levels_;  // Mask's trie-walk scratch
  std::vector<char> allow_;            // Mask's scratch, by token id
};

}  // namespace llmsync::runs
