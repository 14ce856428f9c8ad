// SpmTokenizer: SentencePiece-style BPE, the "llama" tokenizer model (Llama 2, Phi-3, TinyLlama,
// Baichuan, ...).
//
// Encoding a run of text: spaces become "▁" (U+2581) and, with add_space_prefix, one "▁" is put in
// front; the run's characters start as one symbol each; then the adjacent pair whose concatenation
// is the highest-scoring token is merged, leftmost first among equal scores, until no pair forms a
// token. A final symbol that is not a token (a character outside the vocabulary) is spelled with
// <0xAB> byte tokens, or the unknown token when the vocabulary has no byte tokens. Only normal,
// user-defined and undefined tokens take part in merges, as in SentencePiece; control, unknown,
// unused and byte pieces never come out of a merge.
//
// Speed: when the vocabulary shows that no token spans a "▁" preceded by another character (true of
// Llama 2, Phi-3, Baichuan; checked at load), a run is cut into words before each such "▁", each
// word is merged on its own (the result is the same, since no merge could cross the cut) and words
// come from a BpeWordCache, as in byte-level BPE.
//
// remove_extra_whitespaces (when the file sets it) trims spaces at both ends of a run and collapses
// inner runs of spaces to one, as SentencePiece's normalizer does; that encoding is lossy.
//
// Thread safety: immutable after Create except for the internally synchronized word cache.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "text/bpe/bpe_word_cache.h"
#include "text/tokenizer.h"

namespace llmsync::text {

class SpmTokenizer final : public Tokenizer {
 private:
  struct Key {};  // only Create constructs an SpmTokenizer

 public:
  SpmTokenizer(Key key, Vocab vocab);

  // REQUIRES: vocab.Model() == VocabModel::kSpm.
  static Result<std::unique_ptr<Tokenizer>> Create(Vocab vocab);

  std::string_view PreTokenizerName() const override { return ""; }

 protected:
  Status EncodeRun(std::string_view text, bool space_prefix, std::vector<TokenId>* out) const override;

 private:
  // The token a merge may produce for this text, or -1.
  TokenId MergeableToken(std::string_view text) const;
  // Appends the tokens of one word of escaped text, from the cache when it was seen before.
  void EncodeWord(std::string_view word, std::vector<TokenId>* out) const;
  // Merges one escaped segment ("▁" for spaces) and appends its tokens.
  void MergeSegment(std::string_view escaped, std::vector<TokenId>* out) const;
  void EmitSymbol(std::string_view text, std::vector<TokenId>* out) const;

  // Whether a run may be cut before each "▁" that follows another character (decided at load from
  // the vocabulary: true when no mergeable token has such a "▁" inside it, as in Llama 2 / Phi-3).
  bool words_split_at_space_ = false;
  mutable BpeWordCache cache_;
};

}  // namespace llmsync::text
