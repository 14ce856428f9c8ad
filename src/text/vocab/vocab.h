// Vocab: the token table of a model's tokenizer, read from GGUF metadata (tokenizer.ggml.*).
//
// It owns a copy of every token's text, score and type, the text -> id index, the special token
// ids (bos, eos, eot, unk, ...) and the add_bos / add_eos / add_space_prefix flags, so it outlives
// the GgufFile it was read from. FromGguf validates what it reads: array types and lengths, token
// types, duplicate texts; special ids outside the vocabulary are ignored with a warning, as
// llama.cpp does, because such files exist in the field.
//
// Thread safety: immutable after FromGguf; any number of threads may read it concurrently.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "llmsync/status.h"

namespace llmsync::text {

using TokenId = std::int32_t;

// tokenizer.ggml.token_type values (the SentencePiece piece types).
enum class TokenType : std::uint8_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // BOS, EOS, <|im_start|>...: matched in text only with parse_special
  kUserDefined = 4,  // added tokens that are not special: matched in text like the model's tokenizer
  kUnused = 5,
  kByte = 6,  // "<0xAB>": SentencePiece byte fallback
};

enum class VocabModel {
  kBpe,  // tokenizer.ggml.model = "gpt2": byte-level BPE with merges and a pre-tokenizer
  kSpm,  // tokenizer.ggml.model = "llama": SentencePiece BPE over scores, with byte fallback
};

struct SpecialTokens {
  std::optional<TokenId> bos;
  std::optional<TokenId> eos;
  std::optional<TokenId> eot;  // end of turn: from metadata, else found by its usual text
  std::optional<TokenId> eom;
  std::optional<TokenId> unk;
  std::optional<TokenId> sep;
  std::optional<TokenId> pad;
  std::optional<TokenId> mask;
  std::optional<TokenId> fim_pre;
  std::optional<TokenId> fim_suf;
  std::optional<TokenId> fim_mid;
  std::optional<TokenId> fim_pad;
  std::optional<TokenId> fim_rep;
  std::optional<TokenId> fim_sep;
  bool add_bos = false;  // the model expects BOS at the start of a sequence
  bool add_eos = false;
};

// Values a tokenizer family assumes when the GGUF file does not state them.
struct VocabDefaults {
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
};

class Vocab {
 public:
  // REQUIRES: `file` holds tokenizer.ggml.model and tokenizer.ggml.tokens; otherwise an error.
  static Result<Vocab> FromGguf(const engine::GgufFile& file, const VocabDefaults& defaults);

  Vocab(Vocab&&) = default;
  Vocab& operator=(Vocab&&) = default;
  Vocab(const Vocab&) = delete;
  Vocab& operator=(const Vocab&) = delete;

  VocabModel Model() const { return model_; }
  // tokenizer.ggml.pre, or "" when absent.
  const std::string& PreName() const { return pre_name_; }

  std::int32_t Size() const { return static_cast<std::int32_t>(texts_.size()); }
  bool Contains(TokenId id) const { return id >= 0 && id < Size(); }

  // REQUIRES: Contains(id).
  std::string_view Text(TokenId id) const { return texts_[static_cast<std::size_t>(id)]; }
  float Score(TokenId id) const { return scores_[static_cast<std::size_t>(id)]; }
  TokenType Type(TokenId id) const { return types_[static_cast<std::size_t>(id)]; }
  // The byte of a kByte token "<0xAB>", or nullopt for any other token.
  std::optional<std::uint8_t> ByteValue(TokenId id) const;

  // The id whose text is exactly `text` (any type). Empty texts are never found.
  std::optional<TokenId> Find(std::string_view text) const;
  // The "<0xAB>" token of a byte, when the vocabulary has one.
  std::optional<TokenId> ByteToken(std::uint8_t b) const;

  const SpecialTokens& Specials() const { return specials_; }
  bool AddSpacePrefix() const { return add_space_prefix_; }
  bool RemoveExtraWhitespaces() const { return remove_extra_whitespaces_; }
  // Whether generation stops at this token: eos, eot, eom, and every control token whose text is
  // one of the usual end texts (`<|endoftext|>` beside Qwen's `<|im_end|>`, as the model's own
  // generation config lists both).
  bool IsEndOfGeneration(TokenId id) const;
  const std::vector<TokenId>& EndOfGeneration() const { return end_of_generation_; }

 private:
  Vocab() = default;

  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Status ReadTokens(const engine::GgufFile& file);
  Status ReadSpecials(const engine::GgufFile& file, const VocabDefaults& defaults);

  VocabModel model_ = VocabModel::kBpe;
  std::string pre_name_;
  std::vector<std::string> texts_;
  std::vector<float> scores_;
  std::vector<TokenType> types_;
  std::vector<std::int16_t> byte_values_;  // per token: the byte of a kByte token, else -1
  // Keys view texts_; the strings never move (texts_ is not resized after loading, and moving a
  // vector keeps its elements in place).
  std::unordered_map<std::string_view, TokenId, Hash, std::equal_to<>> index_;
  std::vector<TokenId> byte_tokens_;  // 256 entries, -1 when absent
  SpecialTokens specials_;
  std::vector<TokenId> end_of_generation_;  // ascending, no duplicates
  bool add_space_prefix_ = false;
  bool remove_extra_whitespaces_ = false;
};

}  // namespace llmsync::text
