#include "runs/json_schema/json_schema_constraint.h"

#include <cmath>
#include <limits>

namespace llmsync::runs {

std::shared_ptr<const TokenBytes> TokenBytesTable(const text::Tokenizer& tokenizer) {
  auto table = std::make_shared<TokenBytes>(static_cast<std::size_t>(tokenizer.VocabSize()));
  text::DecodeOptions options;
  options.render_special = false;
  options.strip_space_prefix = false;
  for (std::int32_t id = 0; id < tokenizer.VocabSize(); ++id) {
    auto bytes = tokenizer.Decode(std::span<const std::int32_t>(&id, 1), options);
    if (bytes.IsOk()) (*table)[static_cast<std::size_t>(id)] = std::move(bytes).Value();
  }
  return table;
}

JsonSchemaConstraint::JsonSchemaConstraint(std::shared_ptr<const JsonSchema> schema,
                                           std::shared_ptr<const TokenBytes> token_bytes)
    : schema_(std::move(schema)), token_bytes_(std::move(token_bytes)), automaton_(schema_.get()) {}

void JsonSchemaConstraint::Mask(std::span<float> logits, std::int64_t remaining) {
  const float masked = -std::numeric_limits<float>::infinity();
  for (std::size_t id = 0; id < logits.size(); ++id) {
    if (std::isinf(logits[id]) && logits[id] < 0) continue;
    const std::string* bytes = id < token_bytes_->size() ? &(*token_bytes_)[id] : nullptr;
    if (bytes == nullptr || bytes->empty()) {
      logits[id] = masked;
      continue;
    }
    JsonAutomaton next = automaton_;
    if (!next.Feed(*bytes) || next.MinRemaining() > remaining - 1) logits[id] = masked;
  }
}

void JsonSchemaConstraint::Accept(session::TokenId token) {
  auto id = static_cast<std::size_t>(token);
  if (id < token_bytes_->size()) automaton_.Feed((*token_bytes_)[id]);
}

}  // namespace llmsync::runs
