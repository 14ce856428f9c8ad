// RunScheduler's step with a remote engine (SchedulerDeps::remote). Where the local step batches
// prompt slices and samples from logits, this one keeps one upstream stream per active run and
// turns what arrives into the same token events, text state and endings. An upstream that fails
// mid-run is replaced by another, which continues from the tokens already recorded.
#include <algorithm>
#include <chrono>

#include "base/logging.h"
#include "runs/scheduler/scheduler.h"
#include "runs/scheduler/scheduler_internal.h"

namespace llmsync::runs {

void ApplyUpstreamCost(const RunScheduler::ActiveRun& run, CostReport* cost) {
  UpstreamCost u = run.upstream_cost.value_or(UpstreamCost{});
  u.attempts = run.remote_attempts;
  // The upstream computed the run, so its report is the run's cache account: what it says it
  // reused counts as cached (its tier is unknown: RAM), the rest as recomputed. Without a report
  // every prompt token counts as recomputed, the figure that cannot flatter the cache.
  const std::uint64_t prompt = cost->usage.prompt_tokens;
  const std::uint64_t cached = u.cached_tokens ? std::min(*u.cached_tokens, prompt) : 0;
  cost->usage.prompt_tokens_ram = cached;
  cost->usage.prompt_tokens_disk = 0;
  cost->usage.prompt_tokens_recomputed = prompt - cached;
  cost->divergence.reset();  // the local KV account does not apply
  cost->upstream = std::move(u);
}

bool RunScheduler::StartRemote(ActiveRun& run, const std::string& previous_error) {
  RemoteRequest request;
  request.tenant = run.record.tenant;
  request.tokens = run.SequenceTokens();
  request.max_tokens = run.max_tokens - static_cast<std::int32_t>(run.generated.size());
  request.sampling = run.params.sampling;
  ++run.remote_attempts;
  auto started = deps_.remote->Start(request, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++remote_wakeups_;
    }
    cv_.notify_all();
  });
  if (!started.IsOk()) {
    Finish(run, store::RunStatus::kFailed, "", started.GetStatus());
    return false;
  }
  run.remote = std::move(started).Value();
  run.upstream_announced = false;  // run.upstream goes out once the stream shows what it is
  run.upstream_previous_error = previous_error;
  return true;
}

void RunScheduler::AnnounceUpstream(ActiveRun& run) {
  run.upstream_announced = true;
  UpstreamEvent placed = run.remote->Placement();
  placed.attempt = run.remote_attempts;
  placed.from_token = run.generated.size();
  placed.previous_error = run.upstream_previous_error;
  if (!placed.previous_error.empty()) {
    LLMSYNC_LOG(kWarning) << "run " << run.record.id.ShortHex() << " continues on " << placed.upstream
                          << " after " << run.generated.size() << " tokens ("
                          << (placed.exact ? "exact continuation" : "the continuation may differ")
                          << "): " << placed.previous_error;
  }
  Emit(run, placed);
}

void RunScheduler::FinishFromUpstream(ActiveRun& run, const std::string& upstream_reason) {
  const text::Tokenizer& tok = deps_.conversation->GetTokenizer();
  if (upstream_reason == "length") {
    Finish(run, store::RunStatus::kSucceeded, "length", Status::Ok());
    return;
  }
  // The upstream stopped at its end of generation without sending that token (servers that strip
  // it): record the model's end-of-turn token, so the node ends as a local run's does and the next
  // turn's prompt is what the template expects.
  std::optional<TokenId> end = tok.Specials().eot ? tok.Specials().eot : tok.Specials().eos;
  if (end) {
    run.generated.push_back(*end);
    auto [text, done] = AdvanceText(run, *end);
    (void)done;
    Emit(run, TokenEvent{*end, ReplaceInvalidUtf8(text)});
  }
  Finish(run, store::RunStatus::kSucceeded, "stop", Status::Ok());
}

Status RunScheduler::StepRemote() {
  std::uint64_t seen = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    seen = remote_wakeups_;
  }
  const text::Tokenizer& tok = deps_.conversation->GetTokenizer();
  bool progressed = false;
  std::vector<Id> finished;
  auto drop = [&](std::unique_ptr<ActiveRun>& run) {
    finished.push_back(run->record.id);
    run.reset();
    progressed = true;
  };
  for (auto& run : active_) {
    if (!run->started) {
      run->started = true;
      if (run->constraint) {
        Finish(*run, store::RunStatus::kFailed, "",
               Status::Unimplemented("structured output and tool-call grammars mask logits, which needs the "
                                     "local engine; this server generates on remote engines (--engine-url)"));
        drop(run);
        continue;
      }
      if (!run->resumed) {
        store::RunUpdate update;
        update.expect_status = store::RunStatus::kQueued;
        update.status = store::RunStatus::kRunning;
        update.now_ms = deps_.env->UnixMillis();
        Status s = deps_.store->UpdateRun(run->record.tenant, run->record.id, update).GetStatus();
        if (!s.IsOk()) {
          Finish(*run, store::RunStatus::kFailed, "", s);
          drop(run);
          continue;
        }
        Emit(*run, StartedEvent{run->record.session, run->record.from_node, run->prompt.size(), false});
      }
      if (!run->generated.empty() && (tok.IsEndOfGeneration(run->generated.back()) ||
                                      static_cast<std::int64_t>(run->generated.size()) >= run->max_tokens)) {
        // Resumed after its last token was durable.
        bool eog = tok.IsEndOfGeneration(run->generated.back());
        Finish(*run, store::RunStatus::kSucceeded, eog ? "stop" : "length", Status::Ok());
        drop(run);
        continue;
      }
    }
    if (!run->remote && !StartRemote(*run, "")) {
      drop(run);
      continue;
    }
    RemoteProgress got = run->remote->Take();
    if (got.cost) run->upstream_cost = std::move(got.cost);
    if (!run->upstream_announced && (!got.tokens.empty() || got.ended)) AnnounceUpstream(*run);
    // The upstream has the prompt: other samples of an n > 1 request may start (Admit).
    if (!got.tokens.empty()) run->fed = static_cast<std::int64_t>(run->prompt.size());
    bool done = false;
    std::int64_t now = deps_.env->NowMicros();
    for (TokenId token : got.tokens) {
      progressed = true;
      run->remote_failures = 0;
      run->generated.push_back(token);
      if (run->first_token_micros == 0) {
        run->first_token_micros = now;
        run_metrics_.FirstToken(static_cast<double>(now - run->submitted_micros) / 1e6);
      } else {
        run_metrics_.InterToken(static_cast<double>(now - run->last_token_micros) / 1e6);
      }
      run->last_token_micros = now;
      if (tokens_generated_ != nullptr) tokens_generated_->Add();
      auto [text, ends] = AdvanceText(*run, token);
      Emit(*run, TokenEvent{token, ReplaceInvalidUtf8(text)});
      if (ends) {
        bool eog = tok.IsEndOfGeneration(token);
        bool length = !eog && FindStop(run->text, run->params.stop, 0) == std::string::npos &&
                      static_cast<std::int64_t>(run->generated.size()) >= run->max_tokens;
        if (eog || length) {
          // The upstream ends here too and sends its usage report last: wait for it briefly.
          // (A local stop string ends the run at once; its stream is aborted.)
          run->remote->WaitForEnd(std::chrono::seconds(2));
          RemoteProgress rest = run->remote->Take();
          if (rest.cost) run->upstream_cost = std::move(rest.cost);
        }
        Finish(*run, store::RunStatus::kSucceeded, length ? "length" : "stop", Status::Ok());
        done = true;
        break;
      }
    }
    if (done) {
      drop(run);
      continue;
    }
    if (!got.ended) continue;
    progressed = true;
    if (got.error.IsOk()) {
      FinishFromUpstream(*run, got.finish_reason);
      drop(run);
      continue;
    }
    // The upstream failed mid-run: another one continues from the tokens recorded so far (each
    // was queued for the store in order, as a restart would read them back).
    std::string error = run->remote->Placement().upstream + ": " + got.error.ToString();
    run->remote.reset();
    if (++run->remote_failures >= deps_.remote->MaxAttempts()) {
      Finish(*run, store::RunStatus::kFailed, "",
             Status::Unavailable("no upstream engine could continue the run after " +
                                 std::to_string(run->remote_failures) + " attempts; last: " + error));
      drop(run);
      continue;
    }
    if (!StartRemote(*run, error)) drop(run);
  }
  active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
  std::unique_lock<std::mutex> lock(mu_);
  for (const Id& id : finished) active_ids_.erase(id);
  active_count_ = active_.size();
  if (progressed) return Status::Ok();
  // Nothing arrived: sleep until a stream has news, a run is admissible, a cancel or Stop.
  const bool room = static_cast<int>(active_.size()) < options_.max_active_runs;
  cv_.wait_for(lock, std::chrono::milliseconds(200), [&] {
    return stopping_ || remote_wakeups_ != seen || !cancel_requests_.empty() || (room && !queue_.empty());
  });
  return Status::Ok();
}

}  // namespace llmsync::runs
