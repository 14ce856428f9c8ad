#include "runs/json_schema/token_index.h"

#include <algorithm>

namespace llmsync::runs {

std::int32_t PlainStringChars(std::string_view bytes) {
  std::size_t i = 0;
  std::int32_t chars = 0;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    ++chars;
    if (c == '"' || c == '\\' || c < 0x20) return -1;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80;
    unsigned char hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return -1;
    }
    if (i + n >= bytes.size()) return -1;  // an incomplete sequence
    for (std::size_t k = 1; k <= n; ++k) {
      auto d = static_cast<unsigned char>(bytes[i + k]);
      if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) return -1;
    }
    i += n + 1;
  }
  return chars;
}

bool PlainStringBytes(std::string_view bytes) { return PlainStringChars(bytes) >= 0; }

TokenTrie::TokenTrie(const TokenBytes& bytes, const std::vector<char>* select) {
  std::vector<std::uint32_t> ids;
  for (std::size_t id = 0; id < bytes.size(); ++id) {
    if (!bytes[id].empty() && (select == nullptr || (*select)[id] != 0))
      ids.push_back(static_cast<std::uint32_t>(id));
  }
  std::sort(ids.begin(), ids.end(), [&](std::uint32_t a, std::uint32_t b) {
    return bytes[a] != bytes[b] ? bytes[a] < bytes[b] : a < b;
  });
  entries_.resize(ids.size());
  const std::string* previous = nullptr;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string& b = bytes[ids[i]];
    Entry& e = entries_[i];
    e.id = static_cast<session::TokenId>(ids[i]);
    e.offset = static_cast<std::uint32_t>(bytes_.size());
    e.length = static_cast<std::uint32_t>(b.size());
    if (previous != nullptr) {
      auto mismatch = std::mismatch(b.begin(), b.end(), previous->begin(), previous->end());
      e.lcp = static_cast<std::uint32_t>(mismatch.first - b.begin());
    }
    bytes_ += b;
    max_length_ = std::max(max_length_, b.size());
    previous = &b;
  }
  // next_shorter: the nearest later entry with a smaller lcp (a stack of candidates, right to left).
  std::vector<std::uint32_t> stack;
  for (std::size_t i = entries_.size(); i-- > 0;) {
    while (!stack.empty() && entries_[stack.back()].lcp >= entries_[i].lcp) stack.pop_back();
    entries_[i].next_shorter = stack.empty() ? static_cast<std::uint32_t>(entries_.size()) : stack.back();
    stack.push_back(static_cast<std::uint32_t>(i));
  }
}

std::shared_ptr<const TokenIndex> MakeTokenIndex(std::shared_ptr<const TokenBytes> bytes) {
  auto index = std::make_shared<TokenIndex>();
  index->plain_chars.assign(bytes->size(), 0);
  std::vector<char> not_plain(bytes->size(), 0);
  for (std::size_t id = 0; id < bytes->size(); ++id) {
    if ((*bytes)[id].empty()) continue;
    index->plain_chars[id] = std::max(0, PlainStringChars((*bytes)[id]));
    not_plain[id] = index->plain_chars[id] == 0 ? 1 : 0;
  }
  index->all = TokenTrie(*bytes, nullptr);
  index->not_plain = TokenTrie(*bytes, &not_plain);
  index->bytes = std::move(bytes);
  return index;
}

void TokenIndex::AdmitPlain(std::int64_t room, std::int64_t owed, std::int64_t min_remaining,
                            std::int64_t remaining, std::vector<char>* allow) const {
  std::size_t n = std::min(allow->size(), plain_chars.size());
  char* out = allow->data();
  if (room < 0 && owed == 0) {  // every plain token leaves the state as it is
    if (min_remaining > remaining - 1) return;
    for (std::size_t id = 0; id < n; ++id) out[id] = plain_chars[id] != 0 ? 1 : 0;
    return;
  }
  for (std::size_t id = 0; id < n; ++id) {
    std::int64_t k = plain_chars[id];
    out[id] = k != 0 && (room < 0 || k <= room) && min_remaining - std::min(k, owed) <= remaining - 1 ? 1 : 0;
  }
}

}  // namespace llmsync::runs
