// Tokenizer: text <-> token ids for a GGUF model, the interface the rest of llmsync uses.
//
// LoadTokenizer reads tokenizer.ggml.* and builds one of:
//   - byte-level BPE ("gpt2": GPT-2, Llama 3, Qwen2, DeepSeek, StarCoder, Falcon, MPT...), which
//     pre-tokenizes with the model's regexes (pretokenize.h) and merges by rank (bpe.h);
//   - SentencePiece BPE ("llama": Llama 2, Phi-3, TinyLlama...), which merges by score and falls
//     back to <0xAB> byte tokens (spm.h).
//
// Encoding contract:
//   - Input must be valid UTF-8; otherwise kInvalidArgument naming the offset of the first bad
//     byte. (Invalid input is not repaired with U+FFFD: the ids are frozen state.)
//   - Control tokens ("<|im_start|>", "<s>") are recognised in the text only with parse_special;
//     user-defined tokens are recognised by default, as the model's own tokenizer does (see
//     vocab_matcher.h). BOS/EOS are added only when asked; Specials().add_bos says what the model
//     expects.
//   - A byte the vocabulary has no token for is dropped, as HF tokenizers and llama.cpp do (some
//     vocabularies lack rare control bytes, e.g. Falcon has no 0x03).
//   - SentencePiece vocabularies with add_space_prefix put "▁" before each run of text that starts
//     the input or follows a matched special token, like the reference tokenizer; pass
//     space_prefix = false to encode a continuation of earlier text instead.
//
// Decoding contract: any sequence of valid ids decodes; an id outside the vocabulary is
// kInvalidArgument. Byte-level tokens decode through the GPT-2 byte map, SentencePiece "▁" becomes a
// space and <0xAB> tokens their byte, so the result may end inside a UTF-8 character (see
// stream_decoder.h for emitting only complete characters). With the default options,
// Decode(Encode(x)) == x for every valid UTF-8 x whose bytes the vocabulary can represent, except
// that a SentencePiece vocabulary reads a literal "▁" (U+2581) in x as a space.
//
// Thread safety: a Tokenizer is immutable after loading (its word cache is internally
// synchronized); Encode and Decode may be called concurrently from any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "llmsync/status.h"
#include "text/vocab/vocab.h"
#include "text/vocab/vocab_matcher.h"

namespace llmsync::text {

struct EncodeOptions {
  bool add_bos = false;            // prepend BOS (kInvalidArgument when the vocabulary has none)
  bool add_eos = false;            // append EOS (likewise)
  bool parse_special = false;      // recognise control token texts in the input
  bool match_user_defined = true;  // recognise user-defined token texts, as the model does
  bool space_prefix = true;        // SentencePiece: "▁" before the first run of text
};

struct DecodeOptions {
  bool render_special = true;  // emit control and unknown tokens' text; false drops them
  // SentencePiece with add_space_prefix: drop the one space Encode put before each run of text (at
  // the start, and after a control or user-defined token), so decoding inverts encoding.
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  // Tracks where a run of text starts, for strip_space_prefix. One per decoded sequence.
  struct DecodeState {
    bool at_run_start = true;
  };

  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  Result<std::vector<TokenId>> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  // Appends to `out`; on error `out` may hold a prefix of the result.
  Status EncodeAppend(std::string_view text, const EncodeOptions& options, std::vector<TokenId>* out) const;

  Result<std::string> Decode(std::span<const TokenId> ids, const DecodeOptions& options = {}) const;
  // Appends one token's bytes to `out` (the building block of Decode and StreamDecoder).
  Status DecodeAppend(TokenId id, const DecodeOptions& options, DecodeState* state, std::string* out) const;

  VocabModel Model() const { return vocab_.Model(); }
  // "gpt2" or "llama" (tokenizer.ggml.model), and the pre-tokenizer family ("" for SentencePiece).
  std::string_view ModelName() const { return vocab_.Model() == VocabModel::kBpe ? "gpt2" : "llama"; }
  virtual std::string_view PreTokenizerName() const = 0;

  std::int32_t VocabSize() const { return vocab_.Size(); }
  const SpecialTokens& Specials() const { return vocab_.Specials(); }
  const Vocab& GetVocab() const { return vocab_; }
  bool IsEndOfGeneration(TokenId id) const { return vocab_.IsEndOfGeneration(id); }
  // The token's stored text (byte-level or "▁" spelling, as in the GGUF file).
  Result<std::string_view> TokenText(TokenId id) const;

  // Inputs larger than this are refused with kResourceExhausted.
  static constexpr std::size_t kMaxEncodeBytes = std::size_t{1} << 30;

 protected:
  explicit Tokenizer(Vocab vocab);

  // Appends the tokens of one run of ordinary text (no special token inside).
  // `space_prefix`: the run starts the input or follows a matched token, and the caller allows a
  // SentencePiece prefix there.
  // REQUIRES: text is valid UTF-8 and not empty.
  virtual Status EncodeRun(std::string_view text, bool space_prefix, std::vector<TokenId>* out) const = 0;

 private:
  Vocab vocab_;
  SpecialTokenMatcher matcher_;      // views vocab_'s texts; declared after it
  std::vector<std::string> pieces_;  // what each normal token decodes to
  bool strips_space_prefix_ = false;
};

// Builds the tokenizer a GGUF file describes. Errors: kUnimplemented for a tokenizer model or
// pre-tokenizer that is not supported (naming it), kInvalidArgument / kNotFound for missing or
// malformed tokenizer metadata.
Result<std::unique_ptr<Tokenizer>> LoadTokenizer(const engine::GgufFile& file);

// Opens the GGUF file at `path` and loads its tokenizer (the file is not kept open).
Result<std::unique_ptr<Tokenizer>> LoadTokenizerFromFile(Env* env, const std::string& path);

}  // namespace llmsync::text
