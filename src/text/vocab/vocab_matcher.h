// SpecialTokenMatcher: finds the texts of control and user-defined tokens inside input text, so
// that "<|im_start|>" becomes one token instead of being spelled out by BPE.
//
// Matching is leftmost-longest (HF tokenizers' added-token matcher): scanning left to right, at
// each position the longest eligible token text wins. Which tokens are eligible is chosen per call:
//   - control and unknown tokens (BOS, "<|im_end|>", "<unk>") only when the caller asks
//     (parse_special), never from user content by default;
//   - user-defined tokens (added tokens that are not special, e.g. deepseek's "ü" or the runs of
//     spaces NeoX added) when match_user_defined is set, which is what the model's own tokenizer
//     does and therefore the default of EncodeOptions.
// Only texts that are valid UTF-8 take part, so a match never splits a character.
//
// Thread safety: immutable after construction; Partition may run concurrently.
#pragma once

#include <array>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/vocab/vocab.h"

namespace llmsync::text {

// A run of ordinary text, or one matched token (token >= 0, text = the matched characters).
struct TextSegment {
  std::string_view text;
  TokenId token = -1;

  bool IsToken() const { return token >= 0; }
};

class SpecialTokenMatcher {
 public:
  // REQUIRES: `vocab` outlives the matcher (token texts are viewed, not copied).
  explicit SpecialTokenMatcher(const Vocab& vocab);

  // Appends the segments of `text` in order; they concatenate back to `text`. Adjacent text
  // segments never occur; empty text segments are not emitted.
  void Partition(std::string_view text, bool match_control, bool match_user_defined,
                 std::vector<TextSegment>* out) const;

  bool Empty() const { return index_.empty(); }

 private:
  struct Entry {
    TokenId id;
    bool control;  // control or unknown; otherwise user-defined
  };

  // The longest eligible token text starting at text[pos]; an empty view (and -1) when none.
  TextSegment MatchAt(std::string_view text, std::size_t pos, bool match_control,
                      bool match_user_defined) const;

  std::unordered_map<std::string_view, Entry> index_;
  // Distinct text lengths of the candidate tokens, by first byte, longest first.
  std::array<std::vector<std::size_t>, 256> lengths_by_first_byte_;
};

}  // namespace llmsync::text
