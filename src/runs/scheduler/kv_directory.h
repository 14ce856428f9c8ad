// KvDirectory: what one engine process tells the others about its KV cache, for cache-aware
// dispatch (docs/ARCHITECTURE.md, "Cache-aware dispatch").
//
// After a run, the engine's cache holds the KV of every node on the run's path and of its result:
// a node id hashes its whole path, so "this engine holds node N of tenant T" is an exact statement
// about a token prefix. The directory remembers, per member ("<node id>:<tenant>"), the KV span
// that holds the node's last token; a member stays published while that span is cached (RAM or
// disk). Every heartbeat (the scheduler's coordinator, every scan_ms) sends the load, the members
// recorded since the last beat, and the ones whose span left the cache, in one script call; at most
// `cap` members are kept, least recently recorded dropped first, here and in the store alike.
//
// The check is by span key, so it can report a node gone while it is still cached: when a partial
// last block is replaced by the full block that extends it (the next turn), the node's span key is
// dropped and the node is published again at the end of that turn. Dispatch then errs toward
// least_loaded, which costs a prefill, never a wrong token.
//
// Thread safety: every method may be called from any thread (Record and Beat from the inference
// loop, Beat from the coordinator too). mu_ guards the members; beat_mu_ serializes Beat.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvcache/kv_manager/kv_manager.h"
#include "llmsync/id.h"
#include "session/node.h"
#include "store/store.h"

namespace llmsync::runs {

// The directory member of a node of a tenant.
std::string DirectoryMember(std::string_view tenant, const Id& node);

// The dispatch request of a run over `path` (root first): its members deepest first, each with the
// tokens of the path up to and including it. At most `limit` of the deepest nodes.
store::DispatchRequest DispatchPathOf(std::string_view tenant, const std::vector<session::Node>& path,
                                      std::size_t limit);

class KvDirectory {
 public:
  // REQUIRES: store and kv outlive the directory.
  KvDirectory(store::Store* store, kvcache::KvManager* kv, std::string worker, std::int64_t ttl_ms,
              std::size_t cap);

  // The cache holds `tokens` now; `nodes[i]` ends at `ends[i]` tokens (ascending).
  void Record(const std::string& tenant, const std::vector<Id>& nodes, const std::vector<std::int64_t>& ends,
              std::span<const std::int32_t> tokens);
  // Publishes the load and the directory's changes since the last beat.
  Status Beat(std::uint64_t active_runs, std::uint64_t queued_runs, std::uint64_t queued_prompt_tokens);
  // The engine stops: it leaves the store's engine list and directory at once.
  Status Retire();

 private:
  struct Entry {
    std::string member;
    kvcache::SpanKey span;
  };

  store::Store* const store_;
  kvcache::KvManager* const kv_;
  const std::string worker_;
  const std::int64_t ttl_ms_;
  const std::size_t cap_;

  std::mutex beat_mu_;  // one Beat at a time, so the store applies them in order
  std::mutex mu_;
  std::list<Entry> entries_;  // GUARDED_BY(mu_): most recently recorded first
  std::unordered_map<std::string, std::list<Entry>::iterator> by_member_;  // GUARDED_BY(mu_)
  std::vector<std::string> added_;    // GUARDED_BY(mu_): recorded since the last beat
  std::vector<std::string> removed_;  // GUARDED_BY(mu_): dropped since the last beat
};

}  // namespace llmsync::runs
