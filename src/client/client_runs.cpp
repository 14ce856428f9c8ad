// Client: starting runs, following their event streams across dropped connections, cancelling.
#include <algorithm>
#include <charconv>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/client_json.h"
#include "client/http_client.h"
#include "llmsync/client.h"
#include "llmsync/id.h"

namespace llmsync::client {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::uint64_t ParseEventId(const std::string& text) {
  std::uint64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size()) return 0;
  return id;
}

// Applies one event to the result; returns true when it ends the run.
bool Apply(const RunEvent& e, RunResult* out) {
  if (e.type == "token") {
    ++out->tokens;
    return false;
  }
  if (e.type == "run.usage") {
    auto cost = ParseCost(e.data);
    if (cost.IsOk()) out->cost = *cost;
    return false;
  }
  if (e.type == "run.completed") {
    out->status = "succeeded";
    out->node_id = StringField(e.data, "node_id");
    return true;
  }
  if (e.type == "run.failed") {
    out->status = "failed";
    out->error = StringField(e.data, "message");
    return true;
  }
  if (e.type == "run.cancelled") {
    out->status = "cancelled";
    return true;
  }
  return false;
}

}  // namespace

std::string TokenEventText(const std::string& data) { return StringField(data, "text"); }

Result<std::string> Client::StartRun(const RunOptions& options) {
  if (session_id_.empty()) return Status::InvalidArgument("no session selected");
  Json body = {
      {"max_tokens", options.max_tokens}, {"temperature", options.temperature}, {"seed", options.seed}};
  if (!options.from.empty()) body["from"] = options.from;
  if (!options.stop.empty()) body["stop"] = options.stop;
  // With a key the server starts one run however often the request is retried, so it is.
  body["idempotency_key"] =
      options.idempotency_key.empty() ? llmsync::Id::Random().ToHex() : options.idempotency_key;
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Call("POST", "/v1/sessions/" + session_id_ + "/runs", body.dump(), true));
  if (r.status != 202 && r.status != 200) return StatusFromReply(r.status, r.body);
  std::string id = StringField(r.body, "id");
  if (id.empty()) return Status::DataLoss("bad run reply: " + r.body);
  return id;
}

Result<RunResult> Client::FollowRun(const std::string& run_id, const FollowCallbacks& callbacks,
                                    std::uint64_t after) {
  RunResult out;
  out.run_id = run_id;
  out.last_event_id = after;
  const Clock::time_point start = Clock::now();
  const std::string target = "/v1/runs/" + run_id + "/events";
  std::chrono::milliseconds backoff = options_.initial_backoff;
  int failures_in_a_row = 0;
  bool done = false;
  Status fatal;
  while (true) {
    HeaderList headers = AuthHeaders();
    if (out.last_event_id > 0) headers["Last-Event-ID"] = std::to_string(out.last_event_id);
    bool progressed = false;
    int status = 0;
    std::string error_body;
    auto on_sse = [&](const SseEvent& sse) {
      std::uint64_t id = ParseEventId(sse.id);
      if (sse.event == "error" && id == 0) {  // the server could not subscribe us
        fatal = Status::Unavailable("subscribing to run " + run_id + ": " + sse.data);
        return false;
      }
      if (id <= out.last_event_id) return true;  // already delivered before a reconnect
      out.last_event_id = id;
      progressed = true;
      RunEvent e{id, sse.event, sse.data};
      if (e.type == "token") {
        std::string text = StringField(e.data, "text");
        if (out.tokens == 0) {
          out.client_ttft_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        }
        out.text += text;
        if (callbacks.on_token) callbacks.on_token(text);
      }
      done = Apply(e, &out);
      if (callbacks.on_event) callbacks.on_event(e);
      return !done;
    };
    Status s = http_->Stream(target, headers, on_sse, &status, &error_body);
    if (done) return out;
    if (!fatal.IsOk()) return fatal;
    if (s.IsOk() && status >= 400 && status < 500) return StatusFromReply(status, error_body);
    // The stream ended early or the transport failed: resume after the last delivered event.
    if (progressed) {
      failures_in_a_row = 0;
      backoff = options_.initial_backoff;
    } else if (++failures_in_a_row >= options_.max_retries) {
      return Status::Unavailable("following run " + run_id + ": gave up after " +
                                 std::to_string(failures_in_a_row) + " attempts without progress" +
                                 (s.IsOk() ? "" : " (" + s.Message() + ")"));
    }
    ++out.reconnects;
    std::this_thread::sleep_for(progressed ? std::chrono::milliseconds(0) : backoff);
    if (!progressed) backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

Status Client::CancelRun(const std::string& run_id) const {
  HttpClient http(options_.host, options_.port, options_.timeout);
  HeaderList headers = AuthHeaders();
  headers["Content-Type"] = "application/json";
  LLMSYNC_ASSIGN_OR_RETURN(HttpResult r, http.Send("POST", "/v1/runs/" + run_id + "/cancel", "{}", headers));
  if (r.status != 200) return StatusFromReply(r.status, r.body);
  return Status::Ok();
}

}  // namespace llmsync::client
