#include "runs/json_schema/json_schema_constraint.h"

#include <algorithm>
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
                                           std::shared_ptr<const TokenIndex> index)
    : schema_(std::move(schema)), index_(std::move(index)), automaton_(schema_.get()) {}

void JsonSchemaConstraint::Mask(std::span<float> logits, std::int64_t remaining) {
  allow_.assign(logits.size(), 0);
  auto admit = [&](session::TokenId id, const JsonAutomaton& a) {
    if (static_cast<std::size_t>(id) < allow_.size() && a.MinRemaining() <= remaining - 1)
      allow_[static_cast<std::size_t>(id)] = 1;
  };
  auto feed = [](JsonAutomaton& a, unsigned char c) {
    return a.Feed(std::string_view(reinterpret_cast<const char*>(&c), 1));
  };
  JsonAutomaton::PlainString plain = automaton_.InPlainString();
  if (plain.in) {
    // Plain content is judged by its character count: only the other tokens are walked.
    index_->AdmitPlain(plain.room, plain.owed, automaton_.MinRemaining(), remaining, &allow_);
    index_->not_plain.Walk(automaton_, levels_, feed, admit);
  } else {
    index_->all.Walk(automaton_, levels_, feed, admit);
  }
  const float masked = -std::numeric_limits<float>::infinity();
  for (std::size_t id = 0; id < logits.size(); ++id) {
    if (allow_[id] == 0) logits[id] = masked;
  }
}

bool JsonSchemaConstraint::Allows(session::TokenId token, std::int64_t remaining) const {
  auto id = static_cast<std::size_t>(token);
  if (token < 0 || id >= index_->bytes->size() || (*index_->bytes)[id].empty()) return false;
  JsonAutomaton next = automaton_;
  return next.Feed((*index_->bytes)[id]) && next.MinRemaining() <= remaining - 1;
}

void JsonSchemaConstraint::Accept(session::TokenId token) {
  auto id = static_cast<std::size_t>(token);
  if (token >= 0 && id < index_->bytes->size()) automaton_.Feed((*index_->bytes)[id]);
}

}  // namespace llmsync::runs
