// TokenIndex: a tokenizer's vocabulary arranged so that structured-output masks cost time in
// proportion to the live part of the vocabulary, not its size.
//
// TokenTrie holds token ids sorted by their bytes, each with the length of the prefix it shares
// with the previous entry: a depth-first walk over a sorted list. Walk keeps one state per prefix
// depth (levels[d] = the root state fed the entry's first d bytes), feeds each entry only the
// bytes past the prefix it shares with the previous one, and when a byte kills the state, skips
// every later entry under that dead prefix (next_shorter chains jump over them without reading
// their bytes). Levels are reused across walks, so a walk does not allocate once the states'
// buffers have grown. With a 150k vocabulary, a state after "{" of an object visits the handful of
// tokens that start with '"' and dies on the first byte of every other subtree.
//
// TokenIndex bundles what every constraint of one tokenizer shares, built once: the bytes table,
// which tokens are plain JSON string content and how many characters each holds, a trie of all
// tokens and a trie of the non-plain ones (inside a string, plain tokens are admitted by their
// character count against maxLength / minLength and the budget — AdmitPlain — and only the others
// are walked).
//
// Thread safety: immutable once built; Walk is const and keeps its state in the caller's levels.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "session/node.h"

namespace llmsync::runs {

using TokenBytes = std::vector<std::string>;

// Whether `bytes` may sit inside a JSON string as is: no '"', '\\' or control bytes; complete,
// well-formed UTF-8. PlainStringChars: its characters (code points), or -1 when it may not.
bool PlainStringBytes(std::string_view bytes);
std::int32_t PlainStringChars(std::string_view bytes);

class TokenTrie {
 public:
  TokenTrie() = default;
  // The tokens of `bytes` with non-empty bytes and, when `select` is given, select[id] != 0.
  TokenTrie(const TokenBytes& bytes, const std::vector<char>* select);

  std::size_t Size() const { return entries_.size(); }

  // Calls on_token(id, state) for every token whose bytes `feed` accepts one by one from `root`
  // (state: root fed all of them). feed(State&, unsigned char) -> bool advances a state by one
  // byte, false when it dies. `levels` is scratch kept by the caller between walks.
  template <class State, class FeedFn, class TokenFn>
  void Walk(const State& root, std::vector<State>& levels, FeedFn&& feed, TokenFn&& on_token) const {
    if (levels.size() < max_length_ + 1) levels.assign(max_length_ + 1, root);
    levels[0] = root;
    std::size_t i = 0;
    const std::size_t n = entries_.size();
    while (i < n) {
      const Entry& e = entries_[i];
      const char* b = bytes_.data() + e.offset;
      std::uint32_t d = e.lcp;  // levels[0..lcp] hold this entry's prefix states already
      for (; d < e.length; ++d) {
        levels[d + 1] = levels[d];
        if (!feed(levels[d + 1], static_cast<unsigned char>(b[d]))) break;
      }
      if (d < e.length) {  // b[0..d] is dead: so is every later entry that shares it
        std::size_t j = i + 1;
        while (j < n && entries_[j].lcp > d) j = entries_[j].next_shorter;
        i = j;
        continue;
      }
      on_token(entries_[i].id, static_cast<const State&>(levels[e.length]));
      ++i;
    }
  }

 private:
  struct Entry {
    session::TokenId id = 0;
    std::uint32_t offset = 0;        // into bytes_
    std::uint32_t length = 0;        // bytes
    std::uint32_t lcp = 0;           // bytes shared with the previous entry
    std::uint32_t next_shorter = 0;  // the first later entry with a smaller lcp (or Size())
  };
  std::string bytes_;  // the entries' bytes, concatenated in order
  std::vector<Entry> entries_;
  std::size_t max_length_ = 0;
};

struct TokenIndex {
  std::shared_ptr<const TokenBytes> bytes;
  std::vector<std::int32_t> plain_chars;  // by token id: characters of plain tokens, else 0
  TokenTrie all;                          // every token with bytes
  TokenTrie not_plain;                    // the tokens with bytes that are not plain string content

  // Inside a string (JsonAutomaton::PlainString: room, owed) whose state needs `min_remaining`
  // tokens to finish: sets (*allow)[id] for the plain tokens that fit in the room and keep the
  // budget with `remaining` tokens left (this one included), clears it for the others.
  void AdmitPlain(std::int64_t room, std::int64_t owed, std::int64_t min_remaining, std::int64_t remaining,
                  std::vector<char>* allow) const;
};

std::shared_ptr<const TokenIndex> MakeTokenIndex(std::shared_ptr<const TokenBytes> bytes);

}  // namespace llmsync::runs
