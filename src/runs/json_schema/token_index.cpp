#include "runs/json_schema/token_index.h"

#include <algorithm>

#include "text/utf8.h"

namespace llmsync::runs {

std::int32_t PlainStringChars(std::string_view bytes) {
  if (!text::IsValidUtf8(bytes)) return -1;
  std::int32_t chars = 0;
  for (std::size_t i = 0; i < bytes.size(); ++chars) {
    auto c = static_cast<std::uint8_t>(bytes[i]);
    if (c == '"' || c == '\\' || c < 0x20) return -1;
    i += text::Utf8SequenceLength(c);  // 1..4: the bytes are valid UTF-8
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
