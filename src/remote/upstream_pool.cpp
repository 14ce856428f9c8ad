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

UpstreamPool::SessionEntry& UpstreamPool::TouchLocked(const std::string& key) {
  auto it = by_key_.find(key);
  if (it != by_key_.end()) {
    sessions_.splice(sessions_.begin(), sessions_, it->second);
    return sessions_.front();
  }
  if (sessions_.size() >= kMaxSessions) {
    by_key_.erase(sessions_.back().key);
    sessions_.pop_back();
  }
  sessions_.push_front(SessionEntry{key, SIZE_MAX, {}});
  by_key_[key] = sessions_.begin();
  return sessions_.front();
}

std::vector<std::size_t> UpstreamPool::Candidates(const std::string& session_key, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::size_t> up;
  std::vector<std::size_t> down;
  for (std::size_t k = 0; k < upstreams_.size(); ++k) {
    std::size_t i = (next_ + k) % upstreams_.size();  // rotate, so equals take turns
    (state_[i].down_until_ms <= now_ms ? up : down).push_back(i);
  }
  next_ = (next_ + 1) % upstreams_.size();
  std::stable_sort(up.begin(), up.end(),
                   [&](std::size_t a, std::size_t b) { return state_[a].active < state_[b].active; });
  std::stable_sort(down.begin(), down.end(), [&](std::size_t a, std::size_t b) {
    return state_[a].down_until_ms < state_[b].down_until_ms;
  });
  auto it = by_key_.find(session_key);
  if (it != by_key_.end()) {
    std::size_t sticky = it->second->upstream;
    auto pos = std::find(up.begin(), up.end(), sticky);
    if (pos != up.end()) std::rotate(up.begin(), pos, pos + 1);  // the session's upstream first
  }
  up.insert(up.end(), down.begin(), down.end());
  return up;
}

std::uint64_t UpstreamPool::ExpectedCached(const std::string& session_key, std::size_t i,
                                           const std::vector<text::TokenId>& tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_key_.find(session_key);
  if (it == by_key_.end() || it->second->upstream != i) return 0;
  const std::vector<text::TokenId>& held = it->second->tokens;
  auto mismatch = std::mismatch(held.begin(), held.end(), tokens.begin(), tokens.end());
  return static_cast<std::uint64_t>(mismatch.first - held.begin());
}

void UpstreamPool::Begin(const std::string& session_key, std::size_t i, std::vector<text::TokenId> tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  ++state_[i].active;
  SessionEntry& e = TouchLocked(session_key);
  e.upstream = i;
  e.tokens = std::move(tokens);
}

void UpstreamPool::End(const std::string& session_key, std::size_t i, bool ok,
                       std::vector<text::TokenId> held, std::int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  --state_[i].active;
  if (!ok) {
    state_[i].down_until_ms = now_ms + down_ms_;
    return;
  }
  state_[i].down_until_ms = 0;
  auto it = by_key_.find(session_key);
  if (it != by_key_.end() && it->second->upstream == i) it->second->tokens = std::move(held);
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
