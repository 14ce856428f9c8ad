#include "text/stream_decoder.h"

#include "text/utf8.h"

namespace llmsync::text {

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, const DecodeOptions& options)
    : tokenizer_(&tokenizer), options_(options) {}

Result<std::string> StreamDecoder::Push(TokenId id) {
  LLMSYNC_RETURN_IF_ERROR(tokenizer_->DecodeAppend(id, options_, &state_, &pending_));
  const std::size_t hold = IncompleteUtf8Tail(pending_);
  std::string ready = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return ready;
}

std::string StreamDecoder::Flush() {
  std::string rest = std::move(pending_);
  pending_.clear();
  state_ = Tokenizer::DecodeState();
  return rest;
}

}  // namespace llmsync::text
