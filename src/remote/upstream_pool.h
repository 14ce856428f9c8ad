// UpstreamPool: the upstream engines of `--engine-url`, which one a session sticks to, and which
// are down. A session's turns go to the upstream that last served its prefix while that one is up
// (its prefix cache holds the session); a new session, or one whose upstream is down, goes to the
// least busy upstream that is up. An upstream that failed is down for `down_ms`, after which it is
// tried again; with every upstream down, the one down longest is tried.
//
// Per session the pool also remembers the tokens it last sent to (or received from) the upstream,
// so a run can report llmsync's own expectation of that upstream's cache hit beside the
// upstream's figure. Both maps are bounded (least recently used sessions are forgotten).
//
// Thread safety: every method may be called from any thread (one mutex).
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
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

class UpstreamPool {
 public:
  static constexpr std::size_t kMaxSessions = 4096;

  // REQUIRES: !upstreams.empty().
  UpstreamPool(std::vector<UpstreamAddress> upstreams, std::int64_t down_ms);

  std::size_t Size() const { return upstreams_.size(); }
  const UpstreamAddress& At(std::size_t i) const { return upstreams_[i]; }

  // Upstreams to try for a session, best first: its sticky upstream when up, then the others that
  // are up by load, then the ones that are down by how long they have been.
  std::vector<std::size_t> Candidates(const std::string& session_key, std::int64_t now_ms);

  // Tokens of `tokens` that upstream `i` should already hold for this session.
  std::uint64_t ExpectedCached(const std::string& session_key, std::size_t i,
                               const std::vector<text::TokenId>& tokens);

  // A generation started on `i` for the session (the session now sticks to it); it ended.
  void Begin(const std::string& session_key, std::size_t i, std::vector<text::TokenId> tokens);
  // `held`: the sequence the upstream computed (prompt + generated), when it succeeded.
  void End(const std::string& session_key, std::size_t i, bool ok, std::vector<text::TokenId> held,
           std::int64_t now_ms);

  UpstreamIdentity Identity(std::size_t i) const;
  void SetIdentity(std::size_t i, UpstreamIdentity identity);
  void MarkDown(std::size_t i, std::int64_t now_ms);

 private:
  struct State {
    int active = 0;
    std::int64_t down_until_ms = 0;
    UpstreamIdentity identity;
  };
  struct SessionEntry {
    std::string key;
    std::size_t upstream = 0;
    std::vector<text::TokenId> tokens;  // what that upstream was last given or produced
  };
  // REQUIRES: mu_ held. Moves the session to the front, creating it (evicting the oldest).
  SessionEntry& TouchLocked(const std::string& key);

  const std::vector<UpstreamAddress> upstreams_;
  const std::int64_t down_ms_;
  mutable std::mutex mu_;
  std::vector<State> state_;          // GUARDED_BY(mu_)
  std::list<SessionEntry> sessions_;  // GUARDED_BY(mu_): most recent first
  std::unordered_map<std::string, std::list<SessionEntry>::iterator> by_key_;  // GUARDED_BY(mu_)
  std::size_t next_ = 0;  // GUARDED_BY(mu_): round robin among equals
};

}  // namespace llmsync::remote
