#include "text/spm.h"

#include <queue>

#include "text/utf8.h"

namespace llmsync::text {
namespace {

constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"

struct Symbol {
  std::uint32_t start;  // byte range in the escaped text
  std::uint32_t size;
  std::int32_t prev;
  std::int32_t next;
};

struct Candidate {
  float score;
  std::int32_t left;
  std::int32_t right;
  std::uint32_t size;  // bytes of the merged text: stale if the symbols no longer add up to it
};

// Highest score first; among equal scores the leftmost pair.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  }
};

// SentencePiece's remove_extra_whitespaces: no leading or trailing spaces, no double spaces.
std::string CollapseSpaces(std::string_view text) {
  std::string out;
  bool pending_space = false;
  for (char c : text) {
    if (c == ' ') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

SpmTokenizer::SpmTokenizer(Key /*key*/, Vocab vocab) : Tokenizer(std::move(vocab)) {
  // Words can be merged separately when no mergeable token has a "▁" after another character.
  words_split_at_space_ = true;
  for (TokenId id = 0; id < GetVocab().Size() && words_split_at_space_; ++id) {
    if (MergeableToken(GetVocab().Text(id)) != id) continue;
    std::string_view text = GetVocab().Text(id);
    while (text.substr(0, kSpaceMarker.size()) == kSpaceMarker) text.remove_prefix(kSpaceMarker.size());
    if (text.find(kSpaceMarker) != std::string_view::npos) words_split_at_space_ = false;
  }
}

Result<std::unique_ptr<Tokenizer>> SpmTokenizer::Create(Vocab vocab) {
  return std::unique_ptr<Tokenizer>(std::make_unique<SpmTokenizer>(Key{}, std::move(vocab)));
}

TokenId SpmTokenizer::MergeableToken(std::string_view text) const {
  const std::optional<TokenId> id = GetVocab().Find(text);
  if (!id) return -1;
  switch (GetVocab().Type(*id)) {
    case TokenType::kNormal:
    case TokenType::kUserDefined:
    case TokenType::kUndefined: return *id;
    default: return -1;
  }
}

void SpmTokenizer::EmitSymbol(std::string_view text, std::vector<TokenId>* out) const {
  const TokenId id = MergeableToken(text);
  if (id >= 0) {
    out->push_back(id);
    return;
  }
  const std::optional<TokenId> unk = GetVocab().Specials().unk;
  for (char c : text) {
    if (std::optional<TokenId> byte = GetVocab().ByteToken(static_cast<std::uint8_t>(c))) {
      out->push_back(*byte);
    } else if (unk) {
      out->push_back(*unk);
      return;  // one unknown token per character, as SentencePiece does without byte fallback
    }
  }
}

Status SpmTokenizer::EncodeRun(std::string_view text, bool space_prefix, std::vector<TokenId>* out) const {
  std::string collapsed;
  if (GetVocab().RemoveExtraWhitespaces()) {
    collapsed = CollapseSpaces(text);
    text = collapsed;
  }
  std::string escaped;
  escaped.reserve(text.size() + text.size() / 4 + kSpaceMarker.size());
  if (space_prefix && GetVocab().AddSpacePrefix()) escaped.append(kSpaceMarker);
  for (char c : text) {
    if (c == ' ') {
      escaped.append(kSpaceMarker);
    } else {
      escaped.push_back(c);
    }
  }
  if (!words_split_at_space_) {
    MergeSegment(escaped, out);
    return Status::Ok();
  }
  // Cut before every "▁" that follows another character: no token spans such a cut, so each word
  // merges on its own exactly as within the whole run, and repeated words come from the cache.
  const std::string_view all(escaped);
  std::size_t word_start = 0;
  bool prev_marker = false;
  for (std::size_t i = 0; i < all.size();) {
    // 0xE2 never continues a character, so a match is always at a character boundary.
    const bool marker = all.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0;
    if (marker && !prev_marker && i > word_start) {
      EncodeWord(all.substr(word_start, i - word_start), out);
      word_start = i;
    }
    prev_marker = marker;
    i += marker ? kSpaceMarker.size() : 1;
  }
  EncodeWord(all.substr(word_start), out);
  return Status::Ok();
}

void SpmTokenizer::EncodeWord(std::string_view word, std::vector<TokenId>* out) const {
  if (word.empty() || cache_.Lookup(word, out)) return;
  const std::size_t first = out->size();
  MergeSegment(word, out);
  cache_.Insert(word, std::span<const TokenId>(out->data() + first, out->size() - first));
}

void SpmTokenizer::MergeSegment(std::string_view escaped, std::vector<TokenId>* out) const {
  if (escaped.empty()) return;
  std::vector<Symbol> symbols;
  symbols.reserve(escaped.size());
  std::size_t pos = 0;
  while (pos < escaped.size()) {
    std::size_t len = Utf8SequenceLength(static_cast<std::uint8_t>(escaped[pos]));
    if (len == 0 || pos + len > escaped.size()) len = 1;  // unreachable: the text was validated
    const auto index = static_cast<std::int32_t>(symbols.size());
    symbols.push_back(
        {static_cast<std::uint32_t>(pos), static_cast<std::uint32_t>(len), index - 1, index + 1});
    pos += len;
  }
  symbols.back().next = -1;
  auto text_of = [&](std::uint32_t start, std::uint32_t size) { return escaped.substr(start, size); };

  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  auto consider = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& a = symbols[static_cast<std::size_t>(left)];
    const Symbol& b = symbols[static_cast<std::size_t>(right)];
    const TokenId id = MergeableToken(text_of(a.start, a.size + b.size));
    if (id < 0) return;
    queue.push(Candidate{GetVocab().Score(id), left, right, a.size + b.size});
  };
  for (std::size_t i = 1; i < symbols.size(); ++i) {
    consider(static_cast<std::int32_t>(i - 1), static_cast<std::int32_t>(i));
  }
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<std::size_t>(c.left)];
    Symbol& right = symbols[static_cast<std::size_t>(c.right)];
    if (left.size == 0 || right.size == 0 || left.next != c.right || left.size + right.size != c.size) {
      continue;  // stale
    }
    left.size += right.size;
    right.size = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = c.left;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }
  for (std::int32_t i = 0; i >= 0; i = symbols[static_cast<std::size_t>(i)].next) {
    const Symbol& sym = symbols[static_cast<std::size_t>(i)];
    EmitSymbol(text_of(sym.start, sym.size), out);
  }
}

}  // namespace llmsync::text
