// BpeTokenizer: byte-level BPE, the "gpt2" tokenizer model (GPT-2, Llama 3, Qwen2, DeepSeek,
// StarCoder, Falcon, MPT, ...).
//
// Encoding a run of text: the pre-tokenizer splits it into words with the model's regexes; each
// word's bytes start as one symbol each (the byte-level alphabet, byte_unicode.h); then the
// adjacent pair with the lowest merge rank is merged, leftmost first among equal ranks, until no
// pair has a rank. Merges are looked up by (left id, right id) -> (rank, merged id), so the loop
// never builds strings; symbols form a linked list in a vector and candidate pairs wait in a
// priority queue, stale entries being skipped when popped. Words already seen come from a
// BpeWordCache. With ignore_merges (Llama 3), a word that is itself a token is emitted whole.
// With the spec's nfc (Qwen2), each run is NFC-normalized first (unicode_normalize.h).
//
// Merges whose parts or result are not tokens are skipped at load (HF refuses such files; llama.cpp
// would concatenate into a string that is not a token and later emit its bytes).
//
// Thread safety: immutable after Create except for the internally synchronized word cache.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/bpe/bpe_word_cache.h"
#include "text/pretokenize.h"
#include "text/tokenizer.h"

namespace llmsync::text {

class BpeTokenizer final : public Tokenizer {
 private:
  struct Key {};  // only Create constructs a BpeTokenizer

 public:
  BpeTokenizer(Key key, Vocab vocab, PreTokenizer pre, const PreTokenizerSpec& spec);

  // Reads tokenizer.ggml.merges from `file` and compiles `spec`'s regexes.
  // REQUIRES: vocab.Model() == VocabModel::kBpe.
  static Result<std::unique_ptr<Tokenizer>> Create(Vocab vocab, const engine::GgufFile& file,
                                                   const PreTokenizerSpec& spec);

  std::string_view PreTokenizerName() const override { return pre_name_; }

  // Number of merges in use (those whose parts and result are tokens).
  std::size_t MergeCount() const { return merges_.size(); }

 protected:
  Status EncodeRun(std::string_view text, bool space_prefix, std::vector<TokenId>* out) const override;

 private:
  struct Merge {
    std::int32_t rank;
    TokenId result;
  };

  static std::uint64_t PairKey(TokenId left, TokenId right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
  Status LoadMerges(const engine::GgufFile& file);
  // Appends the ids of one pre-tokenized word (raw bytes).
  void EncodeWord(std::string_view word, std::vector<TokenId>* out) const;
  void MergeWord(std::string_view word, std::vector<TokenId>* out) const;

  PreTokenizer pre_;
  std::string_view pre_name_;
  bool ignore_merges_;
  bool nfc_;
  std::array<TokenId, 256> byte_ids_{};  // the token of each byte's one-character spelling, or -1
  std::unordered_map<std::uint64_t, Merge> merges_;
  mutable BpeWordCache cache_;
};

}  // namespace llmsync::text
