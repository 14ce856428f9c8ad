#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pretokenize.h"

#include <pcre2.h>

#include <algorithm>

#include "text/utf8.h"

namespace llmsync::text {
namespace {

struct MatchDataDeleter {
  void operator()(pcre2_match_data* md) const { pcre2_match_data_free(md); }
};
using MatchData = std::unique_ptr<pcre2_match_data, MatchDataDeleter>;

std::string PcreErrorMessage(int code) {
  std::string buf(256, '\0');
  const int n = pcre2_get_error_message(code, reinterpret_cast<PCRE2_UCHAR*>(buf.data()), buf.size());
  buf.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  return buf;
}

}  // namespace

void PreTokenizer::CodeDeleter::operator()(pcre2_real_code_8* code) const { pcre2_code_free(code); }

Result<PreTokenizer> PreTokenizer::Compile(const std::vector<std::string_view>& regexes) {
  PreTokenizer pre;
  for (std::string_view regex : regexes) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    // DOLLAR_ENDONLY: `$` means the end of the piece, never "before a final newline".
    Code code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                            PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error, &offset, nullptr));
    if (code == nullptr) {
      return Status::InvalidArgument("pre-tokenizer regex does not compile at offset " +
                                     std::to_string(offset) + ": " + PcreErrorMessage(error) + ": " +
                                     std::string(regex));
    }
    // JIT is an optimization: when it is unavailable, pcre2_match interprets.
    (void)pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);
    std::uint32_t captures = 0;
    if (pcre2_pattern_info(code.get(), PCRE2_INFO_CAPTURECOUNT, &captures) == 0) {
      pre.max_pairs_ = std::max(pre.max_pairs_, captures + 1);
    }
    pre.codes_.push_back(std::move(code));
  }
  return pre;
}

Status PreTokenizer::Split(std::string_view text, std::vector<std::string_view>* pieces) const {
  if (text.empty()) return Status::Ok();
  if (codes_.empty()) {
    pieces->push_back(text);
    return Status::Ok();
  }
  // One match block, sized for the regex with the most capture groups, serves every match.
  MatchData md(pcre2_match_data_create(max_pairs_, nullptr));
  if (md == nullptr) return Status::ResourceExhausted("pre-tokenizer: cannot allocate PCRE2 match data");
  std::vector<std::string_view> current{text};
  std::vector<std::string_view> next;
  for (std::size_t i = 0; i < codes_.size(); ++i) {
    std::vector<std::string_view>* out = i + 1 == codes_.size() ? pieces : &next;
    for (std::string_view piece : current)
      LLMSYNC_RETURN_IF_ERROR(SplitWith(*codes_[i], md.get(), piece, out));
    if (out == &next) {
      current.swap(next);
      next.clear();
    }
  }
  return Status::Ok();
}

Status PreTokenizer::SplitWith(const pcre2_real_code_8& code, pcre2_match_data* md, std::string_view piece,
                               std::vector<std::string_view>* out) {
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
  std::size_t gap_start = 0;  // end of the previous match: text before the next match is a gap
  std::size_t pos = 0;
  std::uint32_t options = PCRE2_NO_UTF_CHECK;
  while (pos < piece.size()) {
    int rc = pcre2_match(&code, subject, piece.size(), pos, options, md, nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && (options & PCRE2_NO_JIT) == 0) {
      options |= PCRE2_NO_JIT;  // the interpreter keeps its backtracking state on the heap
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      return Status::ResourceExhausted("pre-tokenizer regex failed on a piece of " +
                                       std::to_string(piece.size()) + " bytes: " + PcreErrorMessage(rc));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    const std::size_t start = ov[0];
    const std::size_t end = ov[1];
    if (end <= start) {
      // An empty match splits nothing; step over one character and search again.
      if (start >= piece.size()) break;
      const std::size_t len = Utf8SequenceLength(static_cast<std::uint8_t>(piece[start]));
      pos = start + (len == 0 ? 1 : len);
      continue;
    }
    if (start > gap_start) out->push_back(piece.substr(gap_start, start - gap_start));
    out->push_back(piece.substr(start, end - start));
    gap_start = pos = end;
  }
  if (gap_start < piece.size()) out->push_back(piece.substr(gap_start));
  return Status::Ok();
}

}  // namespace llmsync::text
