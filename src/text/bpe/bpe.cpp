#include "text/bpe/bpe.h"

#include <queue>

#include "base/logging.h"
#include "text/byte_unicode.h"
#include "text/unicode_normalize.h"

namespace llmsync::text {
namespace {

// One symbol of a word being merged: a token id over a byte range, linked to its neighbours.
struct Symbol {
  TokenId id;
  std::int32_t prev;
  std::int32_t next;
  bool alive;
};

// A pair of adjacent symbols that a merge could join. Stale once either side has changed.
struct Candidate {
  std::int32_t rank;
  std::int32_t left;
  std::int32_t right;
  TokenId left_id;
  TokenId right_id;
  TokenId result;
};

// Lowest rank first; among equal ranks the leftmost pair.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.left > b.left;
  }
};

}  // namespace

BpeTokenizer::BpeTokenizer(Key /*key*/, Vocab vocab, PreTokenizer pre, const PreTokenizerSpec& spec)
    : Tokenizer(std::move(vocab)),
      pre_(std::move(pre)),
      pre_name_(spec.name),
      ignore_merges_(spec.ignore_merges),
      nfc_(spec.nfc) {
  std::string spelling;
  for (int b = 0; b < 256; ++b) {
    const char byte = static_cast<char>(b);
    spelling.clear();
    AppendByteLevel(std::string_view(&byte, 1), &spelling);
    std::optional<TokenId> id = GetVocab().Find(spelling);
    byte_ids_[static_cast<std::size_t>(b)] = id.value_or(-1);
  }
}

Result<std::unique_ptr<Tokenizer>> BpeTokenizer::Create(Vocab vocab, const engine::GgufFile& file,
                                                        const PreTokenizerSpec& spec) {
  LLMSYNC_ASSIGN_OR_RETURN(PreTokenizer pre, PreTokenizer::Compile(spec.regexes));
  auto tokenizer = std::make_unique<BpeTokenizer>(Key{}, std::move(vocab), std::move(pre), spec);
  LLMSYNC_RETURN_IF_ERROR(tokenizer->LoadMerges(file));
  return std::unique_ptr<Tokenizer>(std::move(tokenizer));
}

Status BpeTokenizer::LoadMerges(const engine::GgufFile& file) {
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::string_view> merges,
                           file.GetStringArray("tokenizer.ggml.merges"));
  const Vocab& vocab = GetVocab();
  merges_.reserve(merges.size());
  std::size_t skipped = 0;
  std::string joined;
  for (std::size_t rank = 0; rank < merges.size(); ++rank) {
    const std::string_view merge = merges[rank];
    const std::size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string_view::npos;
    if (space == std::string_view::npos) {
      ++skipped;
      continue;
    }
    const std::string_view left = merge.substr(0, space);
    const std::string_view right = merge.substr(space + 1);
    joined.assign(left).append(right);
    const std::optional<TokenId> left_id = vocab.Find(left);
    const std::optional<TokenId> right_id = vocab.Find(right);
    const std::optional<TokenId> result = vocab.Find(joined);
    if (!left_id || !right_id || !result) {
      ++skipped;
      continue;
    }
    // The first (lowest-ranked) occurrence of a pair wins.
    merges_.try_emplace(PairKey(*left_id, *right_id), Merge{static_cast<std::int32_t>(rank), *result});
  }
  if (skipped > 0) {
    LLMSYNC_LOG(kWarning) << "tokenizer: skipped " << skipped << " of " << merges.size()
                          << " merges whose parts are not tokens";
  }
  return Status::Ok();
}

Status BpeTokenizer::EncodeRun(std::string_view text, bool /*space_prefix*/,
                               std::vector<TokenId>* out) const {
  std::string normalized;
  if (nfc_) {
    LLMSYNC_ASSIGN_OR_RETURN(text, ToNfc(text, &normalized));
  }
  std::vector<std::string_view> words;
  LLMSYNC_RETURN_IF_ERROR(pre_.Split(text, &words));
  for (std::string_view word : words) EncodeWord(word, out);
  return Status::Ok();
}

void BpeTokenizer::EncodeWord(std::string_view word, std::vector<TokenId>* out) const {
  if (word.size() == 1) {
    const TokenId id = byte_ids_[static_cast<std::uint8_t>(word[0])];
    if (id >= 0) out->push_back(id);
    return;
  }
  if (cache_.Lookup(word, out)) return;
  const std::size_t first = out->size();
  bool whole = false;
  if (ignore_merges_) {
    std::string spelling;
    AppendByteLevel(word, &spelling);
    if (std::optional<TokenId> id = GetVocab().Find(spelling)) {
      out->push_back(*id);
      whole = true;
    }
  }
  if (!whole) MergeWord(word, out);
  cache_.Insert(word, std::span<const TokenId>(out->data() + first, out->size() - first));
}

void BpeTokenizer::MergeWord(std::string_view word, std::vector<TokenId>* out) const {
  const auto n = static_cast<std::int32_t>(word.size());
  std::vector<Symbol> symbols(static_cast<std::size_t>(n));
  for (std::int32_t i = 0; i < n; ++i) {
    symbols[static_cast<std::size_t>(i)] = {
        byte_ids_[static_cast<std::uint8_t>(word[static_cast<std::size_t>(i)])], i - 1,
        i + 1 < n ? i + 1 : -1, true};
  }
  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  auto consider = [&](std::int32_t left, std::int32_t right) {
    if (left < 0 || right < 0) return;
    const TokenId a = symbols[static_cast<std::size_t>(left)].id;
    const TokenId b = symbols[static_cast<std::size_t>(right)].id;
    if (a < 0 || b < 0) return;
    auto it = merges_.find(PairKey(a, b));
    if (it == merges_.end()) return;
    queue.push(Candidate{it->second.rank, left, right, a, b, it->second.result});
  };
  for (std::int32_t i = 0; i + 1 < n; ++i) consider(i, i + 1);

  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<std::size_t>(c.left)];
    Symbol& right = symbols[static_cast<std::size_t>(c.right)];
    if (!left.alive || !right.alive || left.next != c.right || left.id != c.left_id ||
        right.id != c.right_id) {
      continue;  // stale: one side was merged since this pair was queued
    }
    left.id = c.result;
    left.next = right.next;
    right.alive = false;
    if (right.next >= 0) symbols[static_cast<std::size_t>(right.next)].prev = c.left;
    consider(left.prev, c.left);
    consider(c.left, left.next);
  }
  for (std::int32_t i = 0; i >= 0 && i < n; i = symbols[static_cast<std::size_t>(i)].next) {
    // A byte without a token is dropped, as in HF tokenizers and llama.cpp.
    if (symbols[static_cast<std::size_t>(i)].id >= 0) out->push_back(symbols[static_cast<std::size_t>(i)].id);
  }
}

}  // namespace llmsync::text
