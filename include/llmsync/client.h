// The llmsync C++ client: a local replica of one session kept in sync with a server by deltas, safe
// appends, and durable runs whose token streams survive dropped connections.
//
//   client::Client c(options);            // one server; nothing is sent yet
//   c.CreateSession();                    // or c.OpenSession(id): pulls the session's nodes
//   c.Append(c.Head(), {{"user", "Hi"}});  // idempotency key generated; retried on transport errors
//   auto run = c.StartRun({});            // 202: the run is durable on the server
//   c.FollowRun(*run, on_token);          // SSE; reconnects from the last event id until the end
//   c.Sync();                             // pulls what changed since the replica's seq
//
// Delivery guarantee of FollowRun: every event of the run is passed to the callbacks exactly once
// and in order, whatever connections drop in between. It reconnects with Last-Event-ID after a
// transport failure (exponential backoff, at most `max_retries` attempts in a row without
// progress) and drops any event whose id it has already delivered.
//
// Thread safety: a Client is used by one thread, except CancelRun, which may be called from any
// thread at any time (it uses its own connection and reads only the immutable options).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmsync/status.h"

namespace llmsync::client {

class HttpClient;

struct ClientOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8420;
  std::string api_key;  // sent as "Authorization: Bearer KEY" when set
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  int max_retries = 8;  // attempts in a row without progress before giving up
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(20);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(2);
};

// Parses "http://HOST:PORT" (or "HOST:PORT") into the host and port of `options`.
Status ParseServerUrl(std::string_view url, ClientOptions* options);

// One node as the replica holds it (hidden nodes have no text).
struct Node {
  std::string id;
  std::string parent;  // empty for a node at the top of the tree
  std::uint64_t seq = 0;
  std::int64_t depth = 0;
  std::string kind;  // system, user, assistant, reasoning, tool_call, tool_result, summary, template
  std::string text;
  std::int64_t n_tokens = 0;
};

// A branch tip.
struct BranchTip {
  std::string id;
  std::uint64_t seq = 0;
  std::int64_t depth = 0;
};

struct NewNode {
  std::string kind;
  std::string text;
};

struct AppendOptions {
  std::optional<std::string> expect_head;  // compare-and-swap on the session head
  std::string idempotency_key;             // empty: a fresh random key (stable across retries)
};

struct AppendResult {
  std::vector<std::string> ids;
  std::string head;
  bool replayed = false;         // the server had already applied this key
  std::uint64_t bytes_sent = 0;  // request body bytes of the attempt that succeeded
};

struct RunOptions {
  std::string from;  // empty: the session head
  std::int32_t max_tokens = 128;
  double temperature = 0.8;
  std::uint64_t seed = 0;
  std::vector<std::string> stop;
  std::string idempotency_key;  // empty: a fresh one per StartRun (its retries reuse it)
};

// The cost report of a finished run (the run.usage event).
struct Cost {
  std::int64_t prompt_tokens = 0;
  std::int64_t cached_ram = 0;
  std::int64_t cached_disk = 0;
  std::int64_t recomputed = 0;
  std::int64_t generated = 0;
  std::uint64_t request_bytes = 0;
  std::uint64_t stateless_equivalent_bytes = 0;
  double ttft_ms = 0;
  double decode_tokens_per_s = 0;
  std::int64_t Cached() const { return cached_ram + cached_disk; }
};

struct RunEvent {
  std::uint64_t id = 0;
  std::string type;  // run.started, token, run.usage, run.completed, run.failed, run.cancelled
  std::string data;  // the JSON payload
};

struct RunResult {
  std::string run_id;
  std::string status;  // succeeded, cancelled or failed
  std::string text;    // the concatenated token texts
  std::string node_id;
  std::string error;
  std::optional<Cost> cost;
  std::int64_t tokens = 0;
  int reconnects = 0;  // connections that dropped and were resumed
  std::uint64_t last_event_id = 0;
  double client_ttft_ms = 0;  // from FollowRun's call to the first token event
};

struct FollowCallbacks {
  std::function<void(std::string_view text)> on_token;
  std::function<void(const RunEvent&)> on_event;  // every event, tokens included
};

class Client {
 public:
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Session selection. CreateSession starts an empty replica; OpenSession pulls everything.
  Status CreateSession();
  Status OpenSession(const std::string& session_id);
  // Pulls nodes and heads changed since the replica's seq (repeats while the server says "more").
  Status Sync();

  // Appends `nodes` as a chain under `parent` (empty: the top of the tree). The replica learns the
  // new nodes immediately. Transport failures are retried with the same idempotency key.
  Result<AppendResult> Append(const std::string& parent, const std::vector<NewNode>& nodes,
                              AppendOptions options = {});
  // Moves the session head (rewind, switch branch). Empty `node`: no head.
  Status SetHead(const std::string& node);

  // Starts a run; returns its id. Retried only when no connection could be made, since a run
  // request that reached the server must not start twice.
  Result<std::string> StartRun(const RunOptions& options);
  // Follows the run's events from `after` to its terminal event (see the delivery guarantee above).
  Result<RunResult> FollowRun(const std::string& run_id, const FollowCallbacks& callbacks,
                              std::uint64_t after = 0);
  // POST /v1/runs/{id}/cancel. Safe from any thread.
  Status CancelRun(const std::string& run_id) const;
  // The session bundle (NDJSON), or the transcript with format "markdown".
  Result<std::string> Export(const std::string& format = "") const;

  // The replica.
  const std::string& SessionId() const { return session_id_; }
  const std::string& Head() const { return head_; }
  std::uint64_t Seq() const { return seq_; }
  const std::vector<BranchTip>& Heads() const { return heads_; }
  const Node* Find(const std::string& id) const;
  // The nodes from the top of the tree down to `id` (empty when unknown).
  std::vector<Node> PathTo(const std::string& id) const;
  std::size_t NodeCount() const { return nodes_.size(); }
  // Body bytes this client has sent so far (every request, retries included).
  std::uint64_t BytesSent() const { return bytes_sent_; }
  const ClientOptions& Options() const { return options_; }

 private:
  // A request retried on transport failures with backoff; `idempotent` false retries only when
  // the connection could not be made.
  struct Reply {
    int status = 0;
    std::string body;
  };
  Result<Reply> Call(const std::string& method, const std::string& target, const std::string& body,
                     bool idempotent);
  std::map<std::string, std::string> AuthHeaders() const;
  void Remember(Node node);

  ClientOptions options_;
  std::unique_ptr<HttpClient> http_;
  std::string session_id_;
  std::string head_;
  std::uint64_t seq_ = 0;
  std::vector<BranchTip> heads_;
  std::map<std::string, Node> nodes_;
  std::uint64_t bytes_sent_ = 0;
};

// The text of a token event's JSON payload ("" when it has none).
std::string TokenEventText(const std::string& data);

// Turns a non-2xx reply body ({"error":{"code","message"}}) into a Status.
Status StatusFromReply(int http_status, const std::string& body);

}  // namespace llmsync::client
