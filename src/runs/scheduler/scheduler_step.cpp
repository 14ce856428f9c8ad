#include <algorithm>

#include "base/crash_point.h"
#include "base/logging.h"
#include "runs/scheduler/scheduler.h"
#include "runs/scheduler/scheduler_internal.h"
#include "text/utf8.h"

namespace llmsync::runs {

std::string ReplaceInvalidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    std::optional<std::size_t> bad = text::FindInvalidUtf8(text);
    if (!bad) {
      out.append(text);
      break;
    }
    out.append(text.substr(0, *bad));
    out.append("\xEF\xBF\xBD");  // U+FFFD, one per byte that is not part of a valid character
    text.remove_prefix(*bad + 1);
  }
  return out;
}

std::size_t FindStop(const std::string& text, const std::vector<std::string>& stops, std::size_t from) {
  std::size_t best = std::string::npos;
  for (const std::string& s : stops) {
    std::size_t at = text.find(s, from);
    if (at != std::string::npos && at < best) best = at;
  }
  return best;
}

std::size_t StopPrefixHoldback(const std::string& text, const std::vector<std::string>& stops) {
  std::size_t hold = 0;
  for (const std::string& s : stops) {
    for (std::size_t n = std::min(s.size() - 1, text.size()); n > hold; --n) {
      if (text.compare(text.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

std::pair<std::string, bool> RunScheduler::AdvanceText(ActiveRun& run, TokenId token) {
  const text::Tokenizer& tok = deps_.conversation->GetTokenizer();
  bool done = tok.IsEndOfGeneration(token) ||
              static_cast<std::int64_t>(run.generated.size()) >= run.max_tokens ||
              (run.constraint && run.constraint->Done());  // a constrained output is complete
  if (!tok.IsEndOfGeneration(token)) {
    auto piece = run.decoder->Push(token);
    if (piece.IsOk()) run.text += *piece;
  }
  std::size_t longest_stop = 0;
  for (const std::string& s : run.params.stop) longest_stop = std::max(longest_stop, s.size());
  std::size_t search_from = run.emitted_text > longest_stop ? run.emitted_text - longest_stop : 0;
  std::size_t stop_at = FindStop(run.text, run.params.stop, search_from);
  if (stop_at != std::string::npos) {
    run.text.resize(stop_at);
    done = true;
  }
  if (done) run.text += run.decoder->Flush();
  std::size_t releasable =
      done ? run.text.size() : run.text.size() - StopPrefixHoldback(run.text, run.params.stop);
  releasable = std::max(releasable, run.emitted_text);
  std::string out = run.text.substr(run.emitted_text, releasable - run.emitted_text);
  run.emitted_text = releasable;
  return {std::move(out), done};
}

void RunScheduler::Emit(ActiveRun& run, EventBody body) {
  store::RunEventDraft draft{run.record.tenant, run.record.id, std::string(EventType(body)),
                             deps_.codec.encode(body), run.lease_epoch};
  EventHub* hub = deps_.hub;
  Env* env = deps_.env;
  std::shared_ptr<std::atomic<bool>> lost = run.lease_lost;
  deps_.store->AppendRunEventsAsync({draft}, [hub, env, draft, lost](Result<std::vector<std::uint64_t>> ids) {
    if (!ids.IsOk() && store::IsLeaseLost(ids.GetStatus())) {
      lost->store(true);  // the loop drops the run; the new owner writes its events
      return;
    }
    if (!ids.IsOk()) {
      LLMSYNC_LOG(kError) << "run " << draft.run.ShortHex()
                          << ": event not persisted: " << ids.GetStatus().ToString();
      return;
    }
    hub->Publish(draft.run,
                 {store::RunEvent{draft.run, ids->front(), draft.type, draft.payload, env->UnixMillis()}});
  });
}

void RunScheduler::CommitFinal(ActiveRun& run, store::RunUpdate update,
                               const std::vector<EventBody>& bodies) {
  const std::string crash_prefix(store::RunStatusName(update.status.value_or(run.record.status)));
  for (const EventBody& b : bodies) {
    update.events.push_back({run.record.tenant, run.record.id, std::string(EventType(b)),
                             deps_.codec.encode(b), run.lease_epoch});
  }
  update.lease_epoch = run.lease_epoch;
  CrashPoint(crash_prefix + ".before_commit");
  // The terminal events and the finished status commit in one transaction: a crash leaves either
  // both or neither, so no finished run ever lacks its last event.
  auto updated = deps_.store->UpdateRun(run.record.tenant, run.record.id, update);
  CrashPoint(crash_prefix + ".after_commit");
  if (!updated.IsOk() && store::IsLeaseLost(updated.GetStatus())) {
    LLMSYNC_LOG(kWarning) << "run " << run.record.id.ShortHex()
                          << ": another worker took it over or another process finished it; its final "
                             "status is not recorded from here";
  } else if (!updated.IsOk()) {
    LLMSYNC_LOG(kError) << "run " << run.record.id.ShortHex()
                        << ": final status and events not recorded: " << updated.GetStatus().ToString();
  } else {
    PublishFinal(*deps_.hub, *updated, update.events, deps_.env->UnixMillis());
  }
  deps_.hub->Close(run.record.id);
  if (updated.IsOk() && deps_.on_run_end) deps_.on_run_end(*updated);
}

void PublishFinal(EventHub& hub, const store::RunRecord& updated,
                  const std::vector<store::RunEventDraft>& drafts, std::int64_t now_ms) {
  std::vector<store::RunEvent> events;
  std::uint64_t first = updated.last_event_id + 1 - drafts.size();
  for (std::size_t i = 0; i < drafts.size(); ++i) {
    events.push_back({updated.id, first + i, drafts[i].type, drafts[i].payload, now_ms});
  }
  hub.Publish(updated.id, events);
}

Status RunScheduler::StartRun(ActiveRun& run) {
  std::vector<TokenId> tokens = run.SequenceTokens();
  LLMSYNC_ASSIGN_OR_RETURN(kvcache::Acquired acquired, deps_.kv->Acquire(run.record.tenant, tokens));
  run.seq = std::move(acquired.seq);
  run.account = acquired.account;
  // The last token is always fed again: its logits pick the next token.
  run.fed = std::min<std::int64_t>(run.account.diverged_at, static_cast<std::int64_t>(tokens.size()) - 1);
  run.started = true;
  if (!run.resumed) {
    store::RunUpdate update;
    update.expect_status = store::RunStatus::kQueued;
    update.status = store::RunStatus::kRunning;
    update.now_ms = deps_.env->UnixMillis();
    update.lease_epoch = run.lease_epoch;
    LLMSYNC_RETURN_IF_ERROR(deps_.store->UpdateRun(run.record.tenant, run.record.id, update).GetStatus());
    Emit(run, StartedEvent{run.record.session, run.record.from_node, run.prompt.size(), false});
  }
  return Status::Ok();
}

Status RunScheduler::Step() {
  batch_.Clear();
  std::vector<ActiveRun*> with_logits;
  for (auto& run : active_) {
    if (!run->started) {
      Status s = StartRun(*run);
      if (!s.IsOk()) {
        Finish(*run, store::RunStatus::kFailed, "", s);
        run.reset();
        continue;
      }
      bool constrained_done = run->constraint && run->constraint->Done();
      bool already_done =
          !run->generated.empty() &&
          (deps_.conversation->GetTokenizer().IsEndOfGeneration(run->generated.back()) ||
           static_cast<std::int64_t>(run->generated.size()) >= run->max_tokens || constrained_done);
      if (already_done) {  // resumed after its last token was durable
        bool eog = deps_.conversation->GetTokenizer().IsEndOfGeneration(run->generated.back());
        Finish(*run, store::RunStatus::kSucceeded, eog || constrained_done ? "stop" : "length", Status::Ok());
        run.reset();
        continue;
      }
    }
    std::vector<TokenId> tokens = run->SequenceTokens();
    auto total = static_cast<std::int64_t>(tokens.size());
    std::int64_t n = std::min(options_.prefill_chunk, total - run->fed);
    bool last = run->fed + n == total;
    for (std::int64_t i = 0; i < n; ++i) {
      batch_.Add(run->seq.Id(), run->fed + i, tokens[static_cast<std::size_t>(run->fed + i)],
                 last && i + 1 == n);
    }
    run->feeding = n;
    if (last) with_logits.push_back(run.get());
  }
  active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
  if (batch_.Empty()) return Status::Ok();

  const std::int64_t n_vocab = deps_.engine->GetModel().Hparams().n_vocab;
  logits_.resize(batch_.NumLogits() * static_cast<std::size_t>(n_vocab));
  LLMSYNC_RETURN_IF_ERROR(deps_.engine->Forward(batch_, *deps_.kv, logits_));

  std::int64_t now = deps_.env->NowMicros();
  for (auto& run : active_) {
    if (run->feeding == 0) continue;
    LLMSYNC_RETURN_IF_ERROR(deps_.kv->Commit(run->seq.Id()));
    bool prefill = run->fed < static_cast<std::int64_t>(run->prompt.size());
    if (prefill && tokens_prefilled_ != nullptr)
      tokens_prefilled_->Add(static_cast<std::uint64_t>(run->feeding));
    run->fed += run->feeding;
    run->feeding = 0;
    if (prefill && run->fed == static_cast<std::int64_t>(run->prompt.size())) {
      // The whole prompt is cached, its partial last block included: samples and branches that
      // start while this run decodes reuse it instead of recomputing up to a block.
      LLMSYNC_RETURN_IF_ERROR(deps_.kv->Share(run->seq.Id()));
    }
  }
  for (std::size_t i = 0; i < with_logits.size(); ++i) {
    ActiveRun& run = *with_logits[i];
    if (run.params.prefill_only) {  // the prompt's KV is computed and shared: nothing to sample
      Finish(run, store::RunStatus::kSucceeded, "prefill", Status::Ok());
      run.record.status = store::RunStatus::kSucceeded;  // marks it for removal below
      continue;
    }
    std::span<float> row(logits_.data() + i * static_cast<std::size_t>(n_vocab),
                         static_cast<std::size_t>(n_vocab));
    if (run.constraint) {  // structured output: only tokens that keep the output valid and finishable
      run.constraint->Mask(row, run.max_tokens - static_cast<std::int64_t>(run.generated.size()));
    }
    std::vector<TokenId> history = run.SequenceTokens();
    TokenId token = run.sampler->Sample(row, history, static_cast<std::int64_t>(history.size()));
    run.generated.push_back(token);
    if (run.constraint) run.constraint->Accept(token);
    if (run.first_token_micros == 0) {
      run.first_token_micros = now;
      run_metrics_.FirstToken(static_cast<double>(now - run.submitted_micros) / 1e6);
    } else {
      run_metrics_.InterToken(static_cast<double>(now - run.last_token_micros) / 1e6);
    }
    run.last_token_micros = now;
    if (tokens_generated_ != nullptr) tokens_generated_->Add();
    auto [text, done] = AdvanceText(run, token);
    Emit(run, TokenEvent{token, ReplaceInvalidUtf8(text)});
    if (done) {
      bool eog = deps_.conversation->GetTokenizer().IsEndOfGeneration(token);
      bool length = !eog && FindStop(run.text, run.params.stop, 0) == std::string::npos &&
                    static_cast<std::int64_t>(run.generated.size()) >= run.max_tokens &&
                    !(run.constraint && run.constraint->Done());
      Finish(run, store::RunStatus::kSucceeded, length ? "length" : "stop", Status::Ok());
      run.record.status = store::RunStatus::kSucceeded;  // marks it for removal below
      continue;
    }
    LLMSYNC_RETURN_IF_ERROR(deps_.kv->Append(run.seq.Id(), std::span<const TokenId>(&token, 1)));
  }
  std::vector<Id> finished;
  for (auto& run : active_) {
    if (store::IsTerminal(run->record.status)) {
      finished.push_back(run->record.id);
      run.reset();
    }
  }
  active_.erase(std::remove(active_.begin(), active_.end(), nullptr), active_.end());
  std::lock_guard<std::mutex> lock(mu_);
  for (const Id& id : finished) active_ids_.erase(id);
  active_count_ = active_.size();
  return Status::Ok();
}

namespace {

// The node holding token position `pos` of a path.
Id NodeAtPosition(const std::vector<session::Node>& path, std::int64_t pos) {
  std::int64_t end = 0;
  for (const session::Node& n : path) {
    end += static_cast<std::int64_t>(n.content.tokens.size());
    if (pos < end) return n.id;
  }
  return Id();
}

}  // namespace

void RunScheduler::Finish(ActiveRun& run, store::RunStatus status, const std::string& finish_reason,
                          const Status& error) {
  if (LeaseLost(run)) {  // another worker finishes it: no result node, no final status from here
    DropQuietly(run);
    return;
  }
  std::int64_t now_micros = deps_.env->NowMicros();
  CostReport cost;
  cost.usage.prompt_tokens = run.prompt.size();
  auto cached =
      static_cast<std::uint64_t>(std::max<std::int64_t>(0, run.account.ram_tokens + run.account.disk_tokens));
  cached = std::min<std::uint64_t>(cached, run.prompt.empty() ? 0 : run.prompt.size() - 1);
  std::uint64_t disk = std::min<std::uint64_t>(static_cast<std::uint64_t>(run.account.disk_tokens), cached);
  cost.usage.prompt_tokens_disk = disk;
  cost.usage.prompt_tokens_ram = cached - disk;
  cost.usage.prompt_tokens_recomputed = run.prompt.size() - cached;
  cost.usage.generated_tokens = run.generated.size();
  cost.request_bytes = run.request_bytes;
  cost.stateless_equivalent_bytes = run.stateless_bytes;
  if (run.first_token_micros != 0) cost.ttft_ms = (run.first_token_micros - run.submitted_micros) / 1000.0;
  if (run.generated.size() > 1 && run.last_token_micros > run.first_token_micros) {
    cost.decode_tokens_per_s = static_cast<double>(run.generated.size() - 1) * 1e6 /
                               static_cast<double>(run.last_token_micros - run.first_token_micros);
  }
  if (run.submitted_micros != 0) {
    run_metrics_.Finished(std::string(store::RunStatusName(status)),
                          static_cast<double>(now_micros - run.submitted_micros) / 1e6,
                          cost.decode_tokens_per_s, run.prompt.size());
  }
  if (run.account.reason == kvcache::DivergeReason::kTokenMismatch ||
      run.account.reason == kvcache::DivergeReason::kSnapshotRejected ||
      run.account.reason == kvcache::DivergeReason::kRestoreFailed) {
    cost.divergence = Divergence{run.account.diverged_at, NodeAtPosition(run.path, run.account.diverged_at)};
  }
  run.remote.reset();  // a remote stream still going is aborted
  if (run.remote_attempts > 0) ApplyUpstreamCost(run, &cost);
  if (MultiProcess()) {
    cost.dispatch = run.placement;
  } else if (cost.upstream) {  // one process: the choice was the upstream's
    cost.dispatch = store::RunPlacement{cost.upstream->upstream, "", cost.upstream->reason,
                                        cost.upstream->matched_tokens};
  } else {
    cost.dispatch = store::RunPlacement{"local", "", "local", 0};
  }

  store::RunUpdate update;
  update.status = status;
  update.usage = cost.usage;
  update.now_ms = deps_.env->UnixMillis();
  std::vector<EventBody> events;
  if (status == store::RunStatus::kSucceeded && run.params.prefill_only) {  // no result node
    events.push_back(UsageEvent{cost});
    events.push_back(CompletedEvent{Id(), finish_reason});
  } else if (status == store::RunStatus::kSucceeded) {
    session::NodeDraft draft;
    draft.kind = session::NodeKind::kAssistant;
    draft.text = ReplaceInvalidUtf8(run.text);
    draft.tokens = run.gen_prompt;
    draft.tokens.insert(draft.tokens.end(), run.generated.begin(), run.generated.end());
    CrashPoint("succeeded.before_result");
    session::AppendRequest req;
    req.tenant = run.record.tenant;
    req.session = run.record.session;
    req.parent = run.record.from_node;
    req.nodes = {draft};
    req.expect_head = run.record.from_node;
    req.idempotency_key = "run:" + run.record.id.ToHex();
    Id conflict_head;
    auto appended = deps_.sessions->Append(req, &conflict_head);
    if (!appended.IsOk() && appended.GetStatus().Code() == StatusCode::kConflict) {
      // The head moved while the run generated: keep the result as a side branch.
      req.expect_head.reset();
      req.move_head = false;
      req.idempotency_key += ":branch";
      appended = deps_.sessions->Append(req, nullptr);
    }
    if (appended.IsOk()) {
      update.result_node = appended->ids.back();
      events.push_back(UsageEvent{cost});
      events.push_back(CompletedEvent{appended->ids.back(), finish_reason});
    } else {
      status = store::RunStatus::kFailed;
      update.status = status;
      update.error = "appending the result: " + appended.GetStatus().ToString();
      events.push_back(FailedEvent{std::string(StatusCodeName(appended.GetStatus().Code())), *update.error});
    }
  } else if (status == store::RunStatus::kCancelled) {
    events.push_back(UsageEvent{cost});
    events.push_back(CancelledEvent{});
  } else {
    update.error = error.ToString();
    events.push_back(FailedEvent{std::string(StatusCodeName(error.Code())), error.Message()});
  }
  if (status == store::RunStatus::kSucceeded && run.params.lease_s > 0 && run.seq.Valid()) {
    kvcache::LeaseRequest lease{run.record.tenant, run.SequenceTokens(),
                                static_cast<double>(run.params.lease_s), run.record.session};
    auto leased = deps_.kv->Lease(lease);
    if (!leased.IsOk()) LLMSYNC_LOG(kWarning) << "lease refused: " << leased.GetStatus().ToString();
    Status pinned = leased.IsOk() ? PinSession(run.record.session, lease.ttl_s) : Status::Ok();
    if (!pinned.IsOk()) LLMSYNC_LOG(kWarning) << "recording the session's lease: " << pinned.ToString();
  }
  run.seq.Release();
  if (status == store::RunStatus::kSucceeded) PublishHeld(run, update.result_node.value_or(Id()));
  (void)now_micros;
  CommitFinal(run, std::move(update), events);
  run.record.status = status;
  {
    std::lock_guard<std::mutex> lock(mu_);
    owned_.erase(run.record.id);  // its lease lapses; a finished run is never claimed again
  }
}

}  // namespace llmsync::runs
