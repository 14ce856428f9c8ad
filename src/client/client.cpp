// Client: session selection, delta sync into the replica, appends and head moves.
#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/client_json.h"
#include "client/http_client.h"
#include "llmsync/client.h"
#include "llmsync/id.h"

namespace llmsync::client {

using Json = nlohmann::json;

Status ParseServerUrl(std::string_view url, ClientOptions* options) {
  std::string_view rest = url;
  if (rest.starts_with("http://")) rest.remove_prefix(7);
  if (rest.starts_with("https://"))
    return Status::InvalidArgument("https is not supported: " + std::string(url));
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument("expected http://HOST:PORT, got '" + std::string(url) + "'");
  }
  unsigned port = 0;
  std::string_view digits = rest.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || port == 0 || port > 65535) {
    return Status::InvalidArgument("bad port in '" + std::string(url) + "'");
  }
  options->host = std::string(rest.substr(0, colon));
  options->port = static_cast<std::uint16_t>(port);
  return Status::Ok();
}

Status StatusFromReply(int http_status, const std::string& body) {
  Json j = Json::parse(body, nullptr, false);
  std::string message = "HTTP " + std::to_string(http_status);
  if (j.is_object() && j.contains("error") && j["error"].is_object()) {
    message += ": " + j["error"].value("message", std::string());
  } else if (!body.empty()) {
    message += ": " + body.substr(0, 200);
  }
  switch (http_status) {
    case 400: return Status::InvalidArgument(message);
    case 401: return Status::InvalidArgument(message);
    case 404: return Status::NotFound(message);
    case 409: return Status::Conflict(message);
    case 413:
    case 429: return Status::ResourceExhausted(message);
    case 503: return Status::Unavailable(message);
    default: return Status::Internal(message);
  }
}

Client::Client(ClientOptions options)
    : options_(std::move(options)),
      http_(std::make_unique<HttpClient>(options_.host, options_.port, options_.timeout)) {}

Client::~Client() = default;

std::map<std::string, std::string> Client::AuthHeaders() const {
  std::map<std::string, std::string> h;
  if (!options_.api_key.empty()) h["Authorization"] = "Bearer " + options_.api_key;
  return h;
}

Result<Client::Reply> Client::Call(const std::string& method, const std::string& target,
                                   const std::string& body, bool idempotent) {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  HeaderList headers = AuthHeaders();
  if (!body.empty()) headers["Content-Type"] = "application/json";
  for (int attempt = 0;; ++attempt) {
    bytes_sent_ += body.size();
    Result<HttpResult> r = http_->Send(method, target, body, headers);
    if (r.IsOk() && r->status != 503) return Reply{r->status, std::move(r->body)};
    Status failure = r.IsOk() ? StatusFromReply(r->status, r->body) : r.GetStatus();
    // A request that may have reached the server is retried only when repeating it is harmless.
    bool never_sent = !r.IsOk() && failure.Message().starts_with("cannot ");
    if ((!idempotent && !never_sent) || attempt + 1 >= options_.max_retries) return failure;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void Client::Remember(Node node) {
  std::string id = node.id;
  nodes_[id] = std::move(node);
}

Status Client::CreateSession() {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Call("POST", "/v1/sessions", "{}", false));
  if (r.status != 201) return StatusFromReply(r.status, r.body);
  Json j = Json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string())
    return Status::DataLoss("bad session reply: " + r.body);
  session_id_ = j["id"].get<std::string>();
  head_.clear();
  seq_ = 0;
  heads_.clear();
  nodes_.clear();
  return Status::Ok();
}

Status Client::OpenSession(const std::string& session_id) {
  session_id_ = session_id;
  head_.clear();
  seq_ = 0;
  heads_.clear();
  nodes_.clear();
  return Sync();
}

Status Client::Sync() {
  if (session_id_.empty()) return Status::InvalidArgument("no session selected");
  for (int page = 0; page < 1000; ++page) {
    std::string target = "/v1/sessions/" + session_id_ + "?since=" + std::to_string(seq_);
    LLMSYNC_ASSIGN_OR_RETURN(Reply r, Call("GET", target, "", true));
    if (r.status != 200) return StatusFromReply(r.status, r.body);
    LLMSYNC_ASSIGN_OR_RETURN(SessionDelta delta, ParseSessionDelta(r.body));
    for (Node& n : delta.nodes) Remember(std::move(n));
    heads_ = std::move(delta.heads);
    head_ = delta.head;
    // `seq` is the session's last seq; when more is pending, continue after the last node seen.
    std::uint64_t last_node_seq = seq_;
    for (const auto& [id, n] : nodes_) last_node_seq = std::max(last_node_seq, n.seq);
    if (!delta.more) {
      seq_ = std::max(seq_, delta.seq);
      return Status::Ok();
    }
    if (last_node_seq <= seq_) return Status::DataLoss("sync made no progress");
    seq_ = last_node_seq;
  }
  return Status::ResourceExhausted("session too large to sync");
}

Result<AppendResult> Client::Append(const std::string& parent, const std::vector<NewNode>& nodes,
                                    AppendOptions options) {
  if (session_id_.empty()) return Status::InvalidArgument("no session selected");
  if (options.idempotency_key.empty()) options.idempotency_key = Id::Random().ToHex();
  Json body = Json::object();
  body["parent"] = parent.empty() ? Json(nullptr) : Json(parent);
  if (options.expect_head) body["expect_head"] = *options.expect_head;
  body["idempotency_key"] = options.idempotency_key;
  Json list = Json::array();
  for (const NewNode& n : nodes) list.push_back({{"kind", n.kind}, {"text", n.text}});
  body["nodes"] = std::move(list);
  std::string text = body.dump();
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Call("POST", "/v1/sessions/" + session_id_ + "/nodes", text, true));
  if (r.status != 200 && r.status != 201) return StatusFromReply(r.status, r.body);
  LLMSYNC_ASSIGN_OR_RETURN(AppendReply reply, ParseAppendReply(r.body));
  if (reply.ids.size() != nodes.size()) return Status::DataLoss("append reply has the wrong node count");
  AppendResult out;
  out.head = reply.head;
  out.replayed = reply.replayed;
  out.bytes_sent = text.size();
  std::string up = parent;
  std::int64_t depth = parent.empty() ? 0 : (Find(parent) != nullptr ? Find(parent)->depth + 1 : 0);
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    Node n;
    n.id = reply.ids[i];
    n.parent = up;
    n.seq = reply.seqs[i];
    n.depth = depth + static_cast<std::int64_t>(i);
    n.kind = nodes[i].kind;
    n.text = nodes[i].text;
    n.n_tokens = reply.n_tokens[i];
    up = n.id;
    out.ids.push_back(n.id);
    Remember(std::move(n));
  }
  head_ = reply.head;
  return out;
}

Status Client::SetHead(const std::string& node) {
  if (session_id_.empty()) return Status::InvalidArgument("no session selected");
  Json body = {{"node", node.empty() ? Json(nullptr) : Json(node)}};
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Call("POST", "/v1/sessions/" + session_id_ + "/head", body.dump(), true));
  if (r.status != 200) return StatusFromReply(r.status, r.body);
  head_ = node;
  return Status::Ok();
}

Result<std::string> Client::Export(const std::string& format) const {
  if (session_id_.empty()) return Status::InvalidArgument("no session selected");
  HttpClient http(options_.host, options_.port, options_.timeout);
  std::string target = "/v1/sessions/" + session_id_ + "/export";
  if (!format.empty()) target += "?format=" + format;
  LLMSYNC_ASSIGN_OR_RETURN(HttpResult r, http.Get(target, AuthHeaders()));
  if (r.status != 200) return StatusFromReply(r.status, r.body);
  return std::move(r.body);
}

const Node* Client::Find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::vector<Node> Client::PathTo(const std::string& id) const {
  std::vector<Node> path;
  for (const Node* n = Find(id); n != nullptr; n = n->parent.empty() ? nullptr : Find(n->parent)) {
    path.push_back(*n);
    if (path.size() > nodes_.size()) return {};  // a cycle cannot happen; never loop on bad data
  }
  std::reverse(path.begin(), path.end());
  return path;
}

}  // namespace llmsync::client
