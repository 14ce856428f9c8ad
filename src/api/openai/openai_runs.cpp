#include "api/openai/openai_runs.h"

#include <memory>
#include <mutex>

#include "runs/run_events.h"

namespace llmsync::api {

std::string ApplyRunEvent(const store::RunEvent& event, RunOutcome* out) {
  out->last_event_id = event.event_id;
  Json j = Json::parse(event.payload, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::string();
  if (event.type == runs::kEventToken) {
    ++out->tokens;
    std::string text = j.value("text", std::string());
    out->text += text;
    return text;
  }
  if (event.type == runs::kEventUsage) {
    out->cost = std::move(j);
  } else if (event.type == runs::kEventCompleted) {
    out->status = "completed";
    out->finish_reason = j.value("finish_reason", std::string("stop"));
    // null for a prefill-only run, which writes no node
    if (j.contains("node_id") && j["node_id"].is_string()) {
      if (auto id = Id::FromHex(j["node_id"].get<std::string>()); id.IsOk()) out->node = *id;
    }
  } else if (event.type == runs::kEventCancelled) {
    out->status = "cancelled";
  } else if (event.type == runs::kEventFailed) {
    out->status = "failed";
    out->error = j.value("message", std::string("the run failed"));
  }
  return std::string();
}

HttpResponse RespondWhenRunsEnd(ServerContext& ctx, const std::string& tenant, std::vector<Id> runs,
                                BuildFromOutcomes build) {
  HttpResponse response;
  ServerContext* c = &ctx;
  response.deferred = [c, tenant, runs = std::move(runs),
                       build = std::move(build)](std::function<void(HttpResponse)> finish) {
    struct State {
      std::mutex mu;
      std::vector<RunOutcome> outcomes;
      std::size_t remaining = 0;
    };
    auto state = std::make_shared<State>();
    state->outcomes.resize(runs.size());
    for (std::size_t i = 0; i < runs.size(); ++i) state->outcomes[i].run = runs[i];  // before any callback
    state->remaining = runs.size();
    auto complete = [state, build, finish] {
      std::vector<RunOutcome> outcomes;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        outcomes = state->outcomes;
      }
      Result<HttpResponse> built = Status::Internal("no response was built");
      try {
        built = build(outcomes);
      } catch (const std::exception& e) {
        built = Status::Internal(std::string("building the response: ") + e.what());
      }
      finish(built.IsOk() ? std::move(built).Value() : ErrorResponse(built.GetStatus()));
    };
    for (std::size_t i = 0; i < runs.size(); ++i) {
      auto sub = c->hub->Subscribe(
          tenant, runs[i], 0,
          [state, i](const store::RunEvent& e) {
            std::lock_guard<std::mutex> lock(state->mu);
            ApplyRunEvent(e, &state->outcomes[i]);
            return true;
          },
          [state, complete] {
            bool last = false;
            {
              std::lock_guard<std::mutex> lock(state->mu);
              last = --state->remaining == 0;
            }
            if (last) complete();
          });
      if (!sub.IsOk()) {  // runs already subscribed end later, but the response is this error
        finish(ErrorResponse(sub.GetStatus()));
        return;
      }
    }
  };
  return response;
}

std::uint64_t CachedTokens(const Json& cost) {
  if (!cost.is_object() || !cost.contains("cached_tokens")) return 0;
  const Json& c = cost["cached_tokens"];
  return c.value("ram", std::uint64_t{0}) + c.value("disk", std::uint64_t{0});
}

std::uint64_t PromptTokens(const Json& cost) {
  return cost.is_object() ? cost.value("prompt_tokens", std::uint64_t{0}) : 0;
}

}  // namespace llmsync::api

namespace llmsync::api {

Result<RunOutcome> ReadRunOutcome(ServerContext& ctx, const std::string& tenant, const Id& run) {
  RunOutcome out;
  out.run = run;
  std::uint64_t cursor = 0;
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<store::RunEvent> page,
                             ctx.store->ReadRunEvents(tenant, run, cursor, 1000));
    for (const store::RunEvent& e : page) {
      ApplyRunEvent(e, &out);
      cursor = e.event_id;
    }
    if (page.size() < 1000) return out;
  }
}

}  // namespace llmsync::api
