// JsonSchemaConstraint: the TokenConstraint for structured output — masks every token whose bytes
// would take the JSON automaton (json_schema.h) to a dead state, or leave it further from a
// complete document than the tokens the run has left.
//
// Tokens are judged by their decoded bytes (TokenBytesTable, computed once per tokenizer);
// control tokens decode to nothing and are never allowed, so end-of-generation never interrupts a
// document: the run ends when the automaton is Done. Masking costs one automaton copy and feed per
// vocabulary entry per step (fine for byte and small vocabularies; a token trie would make it
// proportional to the live branches for 100k+ vocabularies).
//
// Thread safety: one constraint per run, used by the inference thread; the shared schema and
// table are immutable.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runs/json_schema/json_schema.h"
#include "runs/token_constraint.h"
#include "text/tokenizer.h"

namespace llmsync::runs {

using TokenBytes = std::vector<std::string>;

// The bytes each token id decodes to on its own (control tokens: empty).
std::shared_ptr<const TokenBytes> TokenBytesTable(const text::Tokenizer& tokenizer);

class JsonSchemaConstraint : public TokenConstraint {
 public:
  // REQUIRES: the schema's root is an object (see JsonAutomaton).
  JsonSchemaConstraint(std::shared_ptr<const JsonSchema> schema,
                       std::shared_ptr<const TokenBytes> token_bytes);

  void Mask(std::span<float> logits, std::int64_t remaining) override;
  void Accept(session::TokenId token) override;
  bool Done() const override { return automaton_.Done(); }

 private:
  std::shared_ptr<const JsonSchema> schema_;
  std::shared_ptr<const TokenBytes> token_bytes_;
  JsonAutomaton automaton_;
};

}  // namespace llmsync::runs
