#include "runs/scheduler/kv_directory.h"

#include <algorithm>

namespace llmsync::runs {

std::string DirectoryMember(std::string_view tenant, const Id& node) {
  return node.ToHex() + ":" + std::string(tenant);
}

store::DispatchRequest DispatchPathOf(std::string_view tenant, const std::vector<session::Node>& path,
                                      std::size_t limit) {
  store::DispatchRequest request;
  std::vector<std::uint64_t> ends;
  std::uint64_t end = 0;
  for (const session::Node& n : path) {
    end += n.content.tokens.size();
    ends.push_back(end);
  }
  for (std::size_t i = path.size(); i > 0 && request.path.size() < limit; --i) {
    request.path.push_back(DirectoryMember(tenant, path[i - 1].id));
    request.depths.push_back(ends[i - 1]);
  }
  return request;
}

KvDirectory::KvDirectory(store::Store* store, kvcache::KvManager* kv, std::string worker, std::int64_t ttl_ms,
                         std::size_t cap)
    : store_(store),
      kv_(kv),
      worker_(std::move(worker)),
      ttl_ms_(ttl_ms),
      cap_(std::max<std::size_t>(1, cap)) {}

void KvDirectory::Record(const std::string& tenant, const std::vector<Id>& nodes,
                         const std::vector<std::int64_t>& ends, std::span<const std::int32_t> tokens) {
  std::vector<kvcache::SpanKey> spans = kv_->SpansHolding(tenant, tokens, ends);
  std::lock_guard<std::mutex> lock(mu_);
  for (std::size_t i = 0; i < nodes.size() && i < spans.size(); ++i) {
    if (spans[i].IsZero()) continue;  // not (or no longer) all cached
    std::string member = DirectoryMember(tenant, nodes[i]);
    auto it = by_member_.find(member);
    if (it != by_member_.end()) {
      it->second->span = spans[i];
      entries_.splice(entries_.begin(), entries_, it->second);
    } else {
      entries_.push_front(Entry{member, spans[i]});
      by_member_[member] = entries_.begin();
    }
    added_.push_back(std::move(member));
  }
  while (entries_.size() > cap_) {
    removed_.push_back(entries_.back().member);
    by_member_.erase(entries_.back().member);
    entries_.pop_back();
  }
}

Status KvDirectory::Beat(std::uint64_t active_runs, std::uint64_t queued_runs,
                         std::uint64_t queued_prompt_tokens) {
  std::lock_guard<std::mutex> serial(beat_mu_);
  std::vector<std::pair<std::string, kvcache::SpanKey>> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Entry& e : entries_) held.emplace_back(e.member, e.span);
  }
  std::vector<kvcache::SpanKey> spans;
  for (const auto& [member, span] : held) spans.push_back(span);
  std::vector<bool> cached = kv_->Contains(spans);  // outside mu_: one KvManager lock for all
  store::EngineBeat beat;
  beat.worker = worker_;
  beat.ttl_ms = ttl_ms_;
  beat.active_runs = active_runs;
  beat.queued_runs = queued_runs;
  beat.queued_prompt_tokens = queued_prompt_tokens;
  beat.held_cap = cap_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t i = 0; i < held.size(); ++i) {
      if (cached[i]) continue;
      auto it = by_member_.find(held[i].first);
      // Recorded again meanwhile under another span: that one was cached when recorded.
      if (it == by_member_.end() || it->second->span != held[i].second) continue;
      removed_.push_back(held[i].first);
      entries_.erase(it->second);
      by_member_.erase(it);
    }
    std::sort(added_.begin(), added_.end());
    added_.erase(std::unique(added_.begin(), added_.end()), added_.end());
    for (const std::string& m : removed_) {
      if (by_member_.count(m) == 0) beat.held_removed.push_back(m);
    }
    for (const std::string& m : added_) {
      if (by_member_.count(m) != 0) beat.held_added.push_back(m);
    }
    added_.clear();
    removed_.clear();
  }
  Status published = store_->PublishEngine(beat);
  if (!published.IsOk()) {  // the next beat carries these changes
    std::lock_guard<std::mutex> lock(mu_);
    added_.insert(added_.end(), beat.held_added.begin(), beat.held_added.end());
    removed_.insert(removed_.end(), beat.held_removed.begin(), beat.held_removed.end());
  }
  return published;
}

Status KvDirectory::Retire() { return store_->RetireEngine(worker_); }

}  // namespace llmsync::runs
