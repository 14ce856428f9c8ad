// ReadableVocab: the built-in vocabulary of the demo model (`model make-test --readable-vocab`), so
// that the noise a random-weight model samples at least looks like text.
//
// A SentencePiece ("llama") vocabulary with no byte tokens: <unk> (0), <s> (1, BOS), </s> (2, EOS),
// "\n", "▁" (a space), the printable ASCII characters, and a few hundred common English words as
// "▁word" pieces, with every "▁" prefix of each word so that the BPE merges can build them. Every
// token decodes to printable ASCII, a space or a newline: no byte token can put U+FFFD, NUL or a
// control byte into the terminal, the API or an export. Input outside the vocabulary (non-ASCII
// text) encodes to <unk>, which decodes to nothing.
//
// `output_row_scale` says how strongly each token's row of output.weight is scaled: whole words and
// punctuation get larger rows than fragments, so a random model samples mostly words; the EOS row
// is tiny, so replies rarely end early.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmsync::engine {

struct ReadableVocab {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<std::int32_t> types;  // tokenizer.ggml.token_type values
  std::vector<float> output_row_scale;
  std::int32_t unk_id = 0;
  std::int32_t bos_id = 1;
  std::int32_t eos_id = 2;
};

// The GGUF metadata value (key "llmsync.test_vocab") that marks a file built with this vocabulary,
// so a cached demo model from an older version can be told apart and rebuilt.
inline constexpr const char* kReadableVocabTag = "readable-1";

ReadableVocab BuildReadableVocab();

}  // namespace llmsync::engine
