#include "text/vocab/vocab_matcher.h"

#include <algorithm>

#include "text/utf8.h"

namespace llmsync::text {

SpecialTokenMatcher::SpecialTokenMatcher(const Vocab& vocab) {
  for (TokenId id = 0; id < vocab.Size(); ++id) {
    const TokenType type = vocab.Type(id);
    const bool control = type == TokenType::kControl || type == TokenType::kUnknown;
    if (!control && type != TokenType::kUserDefined) continue;
    const std::string_view text = vocab.Text(id);
    if (text.empty() || !IsValidUtf8(text)) continue;
    index_.emplace(text, Entry{id, control});
    lengths_by_first_byte_[static_cast<std::uint8_t>(text[0])].push_back(text.size());
  }
  for (auto& lengths : lengths_by_first_byte_) {
    std::sort(lengths.begin(), lengths.end(), std::greater<>());
    lengths.erase(std::unique(lengths.begin(), lengths.end()), lengths.end());
  }
}

TextSegment SpecialTokenMatcher::MatchAt(std::string_view text, std::size_t pos, bool match_control,
                                         bool match_user_defined) const {
  for (std::size_t len : lengths_by_first_byte_[static_cast<std::uint8_t>(text[pos])]) {
    if (len > text.size() - pos) continue;
    const std::string_view candidate = text.substr(pos, len);
    auto it = index_.find(candidate);
    if (it == index_.end()) continue;
    if (it->second.control ? match_control : match_user_defined) return {candidate, it->second.id};
  }
  return {};
}

void SpecialTokenMatcher::Partition(std::string_view text, bool match_control, bool match_user_defined,
                                    std::vector<TextSegment>* out) const {
  if (index_.empty() || (!match_control && !match_user_defined)) {
    if (!text.empty()) out->push_back({text, -1});
    return;
  }
  std::size_t run_start = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (lengths_by_first_byte_[static_cast<std::uint8_t>(text[pos])].empty()) {
      ++pos;
      continue;
    }
    const TextSegment match = MatchAt(text, pos, match_control, match_user_defined);
    if (!match.IsToken()) {
      ++pos;
      continue;
    }
    if (pos > run_start) out->push_back({text.substr(run_start, pos - run_start), -1});
    out->push_back(match);
    pos += match.text.size();
    run_start = pos;
  }
  if (run_start < text.size()) out->push_back({text.substr(run_start), -1});
}

}  // namespace llmsync::text
