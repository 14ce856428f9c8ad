// Pre-tokenization for byte-level BPE: the model's own split regexes, run with PCRE2 in UTF + UCP
// mode, cut text into the pieces ("words") that BPE merges within.
//
// A pre-tokenizer is a sequence of regexes, applied in order (HF's Sequence of Split(Isolated)
// pre-tokenizers, llama.cpp's regex_exprs): each regex splits every piece left by the previous one
// into its matches and the gaps between them, and nothing is dropped, so the pieces always
// concatenate back to the input. Regexes see one piece at a time: `$` and lookaheads stop at the
// piece's end.
//
// FindPreTokenizerSpec maps a tokenizer.ggml.pre value to its regexes; the table lives in
// pretokenize_patterns.cpp, with the source of each entry.
//
// Thread safety: a compiled PreTokenizer is immutable; Split may run concurrently from any number
// of threads (each call uses its own PCRE2 match data).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"

// pcre2.h's pcre2_code_8 and pcre2_match_data_8; the header stays out of ours.
struct pcre2_real_code_8;
struct pcre2_real_match_data_8;

namespace llmsync::text {

struct PreTokenizerSpec {
  std::string_view name;                  // the canonical pre-tokenizer name
  std::vector<std::string_view> regexes;  // PCRE2 syntax, applied in order
  bool ignore_merges = false;             // a piece that is itself a token is emitted whole (llama3)
  bool add_bos = false;                   // family default when the file has no add_bos_token
  bool nfc = false;                       // the model NFC-normalizes text before splitting (Qwen2)
};

// The spec for a tokenizer.ggml.pre value; "" (key absent) means "default", as in llama.cpp.
// kUnimplemented names the value when it is not in the table.
Result<PreTokenizerSpec> FindPreTokenizerSpec(std::string_view pre_name);

// Every tokenizer.ggml.pre value FindPreTokenizerSpec accepts.
std::vector<std::string_view> KnownPreTokenizerNames();

class PreTokenizer {
 public:
  // Compiles (and JIT-compiles, where PCRE2 supports it) each regex; a regex PCRE2 rejects is
  // kInvalidArgument naming it and the offset of the error.
  static Result<PreTokenizer> Compile(const std::vector<std::string_view>& regexes);

  PreTokenizer(PreTokenizer&&) = default;
  PreTokenizer& operator=(PreTokenizer&&) = default;

  // Appends the pieces of `text` in order; their concatenation is `text`. Fails only when PCRE2
  // reports an error (a match or stack limit on pathological input): kResourceExhausted.
  // REQUIRES: text is valid UTF-8 (it is matched with PCRE2_NO_UTF_CHECK).
  Status Split(std::string_view text, std::vector<std::string_view>* pieces) const;

 private:
  struct CodeDeleter {
    void operator()(pcre2_real_code_8* code) const;
  };
  using Code = std::unique_ptr<pcre2_real_code_8, CodeDeleter>;

  PreTokenizer() = default;
  // Splits one piece with one regex, appending matches and the gaps between them.
  static Status SplitWith(const pcre2_real_code_8& code, pcre2_real_match_data_8* md, std::string_view piece,
                          std::vector<std::string_view>* out);

  std::vector<Code> codes_;
  std::uint32_t max_pairs_ = 1;  // ovector pairs the regex with the most capture groups needs
};

}  // namespace llmsync::text
