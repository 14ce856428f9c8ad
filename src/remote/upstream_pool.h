// UpstreamPool: the upstream engines of `--engine-url`, which one a request goes to, and which are
// down. The pool remembers, per upstream, the token sequences it computed (prompt + generated): a
// request that continues one of them (its prompt starts with that run's whole prompt: the next turn
// of a conversation, whatever session it is kept in) goes to the upstream holding the deepest such
// prefix while that one is up (reason cache_hit), since that upstream's prefix cache holds it. A
// request that continues nothing (a new conversation, which shares at most a system prompt) goes
// to the least busy upstream that is up, rotating among equals (reason least_loaded), so
// conversations spread. An upstream that failed is down for `down_ms`, after which it is tried
// again; with every upstream down, the one down longest is tried.
//
// The remembered sequences also give llmsync's own expectation of the upstream's cache hit (the
// longest prefix of the request it computed) beside the upstream's own figure. They are bounded
// (kMaxSequences and kMaxTokens; least recently used forgotten first).
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"
#include "text/tokenizer.h"

namespace llmsync::remote {

struct UpstreamAddress {
  std::string url;  // normalized: http://host:port
  std::string host;
  std::uint16_t port = 0;
};

// "http://HOST:PORT", optionally with a trailing "/" or "/v1"; kInvalidArgument naming what is
// wrong otherwise (https, another path, a bad port).
Result<UpstreamAddress> ParseUpstreamUrl(std::string_view url);

// What an upstream said about itself (GET /v1/models), learned on first use.
struct UpstreamIdentity {
  bool known = false;
  std::string kind;           // "llmsync", "llama.cpp", "vllm", "sglang", "openai-compatible"
  std::string model;          // the id to send as `model`
  bool text_prompts = false;  // refused token-id prompts: send the template-rendered text
};

// One upstream to try, and why it is in that place.
struct UpstreamChoice {
  std::size_t upstream = 0;
  std::string reason;                // cache_hit | least_loaded
  std::uint64_t matched_tokens = 0;  // of the request, computed there before (its expected cache hit)
};

class UpstreamPool {
 public:
  static constexpr std::size_t kMaxSequences = 4096;
  static constexpr std::size_t kMaxTokens = std::size_t{1} << 22;

  // REQUIRES: !upstreams.empty().
  UpstreamPool(std::vector<UpstreamAddress> upstreams, std::int64_t down_ms);

  std::size_t Size() const { return upstreams_.size(); }
  const UpstreamAddress& At(std::size_t i) const { return upstreams_[i]; }

  // Upstreams to try for a request's tokens, best first: the one holding the deepest prefix it
  // continues when up, else the up ones by load; then the down ones by how long they have been.
  // Only sequences of the same tenant count (as the local KV cache, tenants never share prefixes).
  std::vector<UpstreamChoice> Candidates(const std::string& tenant, const std::vector<text::TokenId>& tokens,
                                         std::int64_t now_ms);

  // A generation started on `i` with the prompt `prompt`; it ended. `held`: the sequence the
  // upstream computed (prompt + generated), when it succeeded.
  void Begin(std::size_t i);
  void End(std::size_t i, bool ok, const std::string& tenant, const std::vector<text::TokenId>& prompt,
           std::vector<text::TokenId> held, std::int64_t now_ms);

  UpstreamIdentity Identity(std::size_t i) const;
  void SetIdentity(std::size_t i, UpstreamIdentity identity);
  void MarkDown(std::size_t i, std::int64_t now_ms);

 private:
  struct State {
    int active = 0;
    std::int64_t down_until_ms = 0;
    UpstreamIdentity identity;
  };
  struct Held {
    std::size_t upstream = 0;
    std::string tenant;
    std::size_t prompt_tokens = 0;      // a request continues this one when it starts with these
    std::vector<text::TokenId> tokens;  // prompt + generated
  };

  const std::vector<UpstreamAddress> upstreams_;
  const std::int64_t down_ms_;
  mutable std::mutex mu_;
  std::vector<State> state_;     // GUARDED_BY(mu_)
  std::list<Held> held_;         // GUARDED_BY(mu_): most recent first
  std::size_t held_tokens_ = 0;  // GUARDED_BY(mu_)
  std::size_t next_ = 0;         // GUARDED_BY(mu_): round robin among equals
};

}  // namespace llmsync::remote
