// Reading what OpenAI-compatible servers put in a completion response or stream chunk: generated
// token ids (when the server returns them), text, the finish reason, and the server's own report
// of its prompt cache, which each server spells differently. Shared by the remote engine adapter
// and `llmsync bench trace --target`, so both say which field a figure came from.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace llmsync::remote {

// A server's account of one request's prompt: how many tokens it reused from its cache.
struct CacheReport {
  std::optional<std::uint64_t> prompt_tokens;  // as the server counted them
  std::optional<std::uint64_t> cached_tokens;  // reused, not computed
  // The field the cached figure came from:
  //   "timings.prompt_n"  llama-server: prompt tokens it computed (cached = prompt - prompt_n)
  //   "usage.prompt_tokens_details.cached_tokens"  OpenAI, vLLM (--enable-prompt-tokens-details),
  //                                                 SGLang, llmsync
  //   "tokens_cached"     llama-server's native field
  std::string field;
};

// The cache report in a response body or chunk (top-level `usage`, `timings`, `tokens_cached`);
// nullopt when it carries none of them. llama-server's `timings.prompt_n` is preferred: it is the
// prefill the server actually ran, where `cached_tokens` is absent or zero on many versions.
std::optional<CacheReport> ReadCacheReport(const nlohmann::json& body);

// What one stream chunk (or a whole non-streamed response) of /v1/completions holds for choice 0.
struct CompletionPiece {
  std::vector<std::int32_t> token_ids;  // llmsync and vLLM: choices[0].token_ids; llama-server: tokens
  bool has_token_ids = false;
  std::string text;
  std::optional<std::string> finish_reason;
  std::optional<std::string> error;  // an {"error": ...} object sent inside the stream
};
CompletionPiece ReadCompletionPiece(const nlohmann::json& chunk);

}  // namespace llmsync::remote
