// StreamDecoder: turns generated tokens into text one token at a time, emitting only complete UTF-8
// characters.
//
// A character can be split across tokens (byte-level BPE spells an emoji with up to four byte
// tokens; SentencePiece falls back to <0xF0><0x9F>...). Push() appends the token's bytes and
// returns everything up to the last complete character, holding back a trailing sequence that is
// still a valid prefix of a character. Bytes that can never become valid UTF-8 (a stray
// continuation byte, 0xFF) are passed through at once rather than stalling the stream. Flush()
// returns what is held back at the end of the stream. The concatenation of everything returned
// equals Tokenizer::Decode of the same tokens with the same options.
//
// Thread safety: one decoder per stream, used by one thread at a time. The Tokenizer it reads is
// shared and immutable.
#pragma once

#include <string>

#include "text/tokenizer.h"

namespace llmsync::text {

class StreamDecoder {
 public:
  // REQUIRES: `tokenizer` outlives the decoder.
  explicit StreamDecoder(const Tokenizer& tokenizer, const DecodeOptions& options = {});

  // Decodes one token; returns the text that is now complete (possibly empty). An id outside the
  // vocabulary is kInvalidArgument and leaves the decoder unchanged.
  Result<std::string> Push(TokenId id);

  // Returns the held-back bytes (an incomplete character at the end of the stream) as they are,
  // and resets the decoder for a new stream.
  std::string Flush();

  // Bytes held back, waiting for the rest of a character.
  std::size_t PendingBytes() const { return pending_.size(); }

 private:
  const Tokenizer* tokenizer_;
  DecodeOptions options_;
  Tokenizer::DecodeState state_;
  std::string pending_;
};

}  // namespace llmsync::text
