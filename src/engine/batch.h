// Batch: the unit of work of Engine::Forward — a list of (sequence, position, token) entries, each
// optionally asking for the logits of the next token.
//
// A batch may mix sequences freely (a prefill of one sequence beside single-token decodes of
// others). Within one sequence the entries must be in consecutive ascending positions (the first
// one may be any position up to the sequence's current end in the KV storage). Forward returns
// logits for the entries that asked, in batch order.
//
// Thread safety: a value type; not synchronized.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv_storage.h"

namespace llmsync::engine {

struct BatchEntry {
  SeqId seq = 0;
  std::int64_t pos = 0;
  std::int32_t token = 0;
  bool logits = false;  // return the logits predicting the token after this one
};

class Batch {
 public:
  Batch() = default;

  void Add(SeqId seq, std::int64_t pos, std::int32_t token, bool logits) {
    entries_.push_back(BatchEntry{seq, pos, token, logits});
    if (logits) ++n_logits_;
  }
  // Appends tokens of one sequence at positions first_pos, first_pos + 1, ...; logits for the last
  // one only, or for all of them when `all_logits`.
  void AddSequence(SeqId seq, std::int64_t first_pos, const std::vector<std::int32_t>& tokens,
                   bool all_logits = false) {
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      Add(seq, first_pos + static_cast<std::int64_t>(i), tokens[i], all_logits || i + 1 == tokens.size());
    }
  }
  void Clear() {
    entries_.clear();
    n_logits_ = 0;
  }
  // Keeps the storage of a batch reused every step (no allocation once warmed up).
  void Reserve(std::size_t n) { entries_.reserve(n); }

  const std::vector<BatchEntry>& Entries() const { return entries_; }
  std::size_t Size() const { return entries_.size(); }
  bool Empty() const { return entries_.empty(); }
  std::size_t NumLogits() const { return n_logits_; }

 private:
  std::vector<BatchEntry> entries_;
  std::size_t n_logits_ = 0;
};

}  // namespace llmsync::engine
