#include "remote/upstream_pool.h"

#include <algorithm>
#include <charconv>

namespace llmsync::remote {

Result<UpstreamAddress> ParseUpstreamUrl(std::string_view url) {
  const std::string quoted = "engine URL '" + std::string(url) + "'";
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status::InvalidArgument(quoted + ": https is not supported; use http:// (a TLS proxy in front)");
  }
  if (url.rfind(kScheme, 0) != 0) return Status::InvalidArgument(quoted + " must start with http://");
  std::string_view rest = url.substr(kScheme.size());
  std::size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  if (!path.empty() && path != "/" && path != "/v1" && path != "/v1/") {
    return Status::InvalidArgument(quoted + ": only http://HOST:PORT (optionally /v1) is supported");
  }
  std::size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(quoted + " needs a host and a port: http://HOST:PORT");
  }
  UpstreamAddress a;
  a.host = std::string(hostport.substr(0, colon));
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']')
    a.host = a.host.substr(1, a.host.size() - 2);
  std::string_view port = hostport.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    return Status::InvalidArgument(quoted + ": bad port '" + std::string(port) + "'");
  }
  a.port = static_cast<std::uint16_t>(value);
  a.url = "http://" + std::string(hostport);
  return a;
}

UpstreamPool::UpstreamPool(std::vector<UpstreamAddress> upstreams, std::int64_t down_ms)
    : upstreams_(std::move(upstreams)), down_ms_(down_ms), state_(upstreams_.size()) {}

std::vector<UpstreamChoice> UpstreamPool::Candidates(const std::string& tenant,
                                                     const std::vector<text::TokenId>& tokens,
                                                     std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t n = upstreams_.size();
  // Per upstream: the longest prefix of `tokens` it computed, and the deepest run it continues.
  std::vector<std::uint64_t> matched(n, 0);
  std::vector<std::uint64_t> continued(n, 0);
  for (const Held& h : held_) {
    if (h.tenant != tenant) continue;
    auto mismatch = std::mismatch(h.tokens.begin(), h.tokens.end(), tokens.begin(), tokens.end());
    auto common = static_cast<std::uint64_t>(mismatch.first - h.tokens.begin());
    matched[h.upstream] = std::max(matched[h.upstream], common);
    if (h.prompt_tokens > 0 && common >= h.prompt_tokens)
      continued[h.upstream] = std::max(continued[h.upstream], common);
  }
  std::vector<std::size_t> up;
  std::vector<std::size_t> down;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (next_ + k) % n;  // rotate, so equals take turns
    (state_[i].down_until_ms <= now_ms ? up : down).push_back(i);
  }
  next_ = (next_ + 1) % n;
  std::stable_sort(up.begin(), up.end(),
                   [&](std::size_t a, std::size_t b) { return state_[a].active < state_[b].active; });
  std::stable_sort(down.begin(), down.end(), [&](std::size_t a, std::size_t b) {
    return state_[a].down_until_ms < state_[b].down_until_ms;
  });
  // The deepest continuation first (by load among equals, as sorted).
  auto deepest = std::max_element(up.begin(), up.end(),
                                  [&](std::size_t a, std::size_t b) { return continued[a] < continued[b]; });
  const bool hit = deepest != up.end() && continued[*deepest] > 0;
  if (hit) std::rotate(up.begin(), deepest, deepest + 1);
  std::vector<UpstreamChoice> out;
  for (std::size_t i : up) {
    bool first = out.empty();
    out.push_back({i, first && hit ? "cache_hit" : "least_loaded", matched[i]});
  }
  for (std::size_t i : down) out.push_back({i, "least_loaded", matched[i]});
  return out;
}

void UpstreamPool::Begin(std::size_t i) {
  std::lock_guard<std::mutex> lock(mu_);
  ++state_[i].active;
}

void UpstreamPool::End(std::size_t i, bool ok, const std::string& tenant,
                       const std::vector<text::TokenId>& prompt, std::vector<text::TokenId> held,
                       std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  --state_[i].active;
  if (!ok) {
    state_[i].down_until_ms = now_ms + down_ms_;
    return;
  }
  state_[i].down_until_ms = 0;
  // What this run continued on the same upstream is covered by the new sequence: drop it, keeping
  // its anchor (a request continuing an earlier turn of the conversation still finds it here).
  std::size_t anchor = prompt.size();
  for (auto it = held_.begin(); it != held_.end();) {
    bool covered = it->upstream == i && it->tenant == tenant && it->tokens.size() <= held.size() &&
                   std::equal(it->tokens.begin(), it->tokens.end(), held.begin());
    if (covered) {
      anchor = std::min(anchor, it->prompt_tokens);
      held_tokens_ -= it->tokens.size();
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
  held_tokens_ += held.size();
  held_.push_front(Held{i, tenant, anchor, std::move(held)});
  while (held_.size() > kMaxSequences || (held_tokens_ > kMaxTokens && held_.size() > 1)) {
    held_tokens_ -= held_.back().tokens.size();
    held_.pop_back();
  }
}

UpstreamIdentity UpstreamPool::Identity(std::size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_[i].identity;
}

void UpstreamPool::SetIdentity(std::size_t i, UpstreamIdentity identity) {
  std::lock_guard<std::mutex> lock(mu_);
  state_[i].identity = std::move(identity);
}

void UpstreamPool::MarkDown(std::size_t i, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  state_[i].down_until_ms = now_ms + down_ms_;
}

}  // namespace llmsync::remote
