#include "api/openai/openai_index.h"

#include <algorithm>

#include "base/sha256.h"

namespace llmsync::api {
namespace {

// The code points in the first `bytes` bytes of UTF-8 text (continuation bytes are not counted).
std::size_t CodePoints(std::string_view text, std::size_t bytes) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < bytes && i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++n;
  }
  return n;
}

// The length of the common prefix of two strings, backed off to a character boundary of `a`.
std::size_t CommonPrefix(std::string_view a, std::string_view b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  while (n > 0 && n < a.size() && (static_cast<unsigned char>(a[n]) & 0xC0) == 0x80) --n;
  return n;
}

// Keyed by the server's secret: from public data alone (tenant "local", the fingerprint /healthz
// shows) nobody can compute the id and read the session (issue 17, DNS rebinding). Each distinct
// tool list is a session of its own, so every node in it renders with the same tools.
Id OpenAiSessionId(const std::string& tenant, const Id& model, const Id& secret, const Id& tools) {
  Sha256 h;
  h.Update(std::string_view("llmsync/openai-session/v2"));
  h.Update(std::span<const std::uint8_t>(secret.RawBytes()));
  h.UpdateU64(tenant.size());
  h.Update(tenant);
  h.Update(std::span<const std::uint8_t>(model.RawBytes()));
  if (!tools.IsZero()) h.Update(std::span<const std::uint8_t>(tools.RawBytes()));
  return Id(h.Finish());
}

}  // namespace

Id ConversationIndex::Digest(const session::NodeContent& content) {
  Sha256 h;
  h.UpdateU64(content.tool_name.size());
  h.Update(content.tool_name);
  h.UpdateU64(content.call_id.size());
  h.Update(content.call_id);
  h.Update(content.text);
  return Id(h.Finish());
}

Id ConversationIndex::CallsDigest(const std::vector<std::array<std::string, 3>>& calls) {
  Sha256 h;
  h.Update(std::string_view("llmsync/openai-calls/v1"));
  for (const auto& c : calls) {
    for (const std::string& field : c) {
      h.UpdateU64(field.size());
      h.Update(field);
    }
  }
  return Id(h.Finish());
}

Result<Id> ConversationIndex::SessionFor(const std::string& tenant, const Id& tools) {
  Id id = OpenAiSessionId(tenant, ctx_->model_fingerprint, ctx_->session_secret, tools);
  if (ctx_->sessions->GetSession(tenant, id).IsOk()) return id;
  store::SessionRecord record;
  record.id = id;
  record.tenant = tenant;
  record.model = ctx_->model_fingerprint;
  record.created_at_ms = ctx_->env->UnixMillis();
  Status created = ctx_->store->CreateSession(record);
  if (!created.IsOk() && created.Code() != StatusCode::kAlreadyExists) return created;
  return id;
}

Status ConversationIndex::CatchUp(const std::string& tenant, const Id& session) {
  std::lock_guard<std::mutex> lock(mu_);
  SessionIndex& index = sessions_[session];
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(session::Diff diff,
                             ctx_->sessions->DiffSince(tenant, session, index.seen_seq, 4096));
    for (const session::Node& n : diff.nodes) {
      // Hidden nodes are never matched by content: a resent message that equals one must not be
      // told apart from any other (issue 17; docs/ARCHITECTURE.md, "Hidden nodes"). OpenAI messages
      // are public, so such a message becomes a new public node, exactly like a wrong guess.
      if (n.IsHidden()) {
        index.seen_seq = std::max(index.seen_seq, n.seq);
        continue;
      }
      Id calls;
      Id content;
      std::uint64_t reasoning_tokens = 0;
      if (n.content.kind == session::NodeKind::kAssistant) {
        ParsedOutput parsed = ParseModelOutput(family_, n.content.text);
        if (!parsed.reasoning.empty()) {
          auto tokens = ctx_->conversation->GetTokenizer().Encode(parsed.reasoning);
          reasoning_tokens = tokens.IsOk() ? tokens->size() : 0;
          if (parsed.calls.empty()) {
            session::NodeContent visible;
            visible.text = parsed.content;
            content = Digest(visible);
          }
        }
        if (!parsed.calls.empty()) {
          std::vector<std::array<std::string, 3>> list;
          for (std::size_t i = 0; i < parsed.calls.size(); ++i) {
            list.push_back(
                {CallIdFor(family_, n.id.ToHex(), i), parsed.calls[i].name, parsed.calls[i].arguments});
          }
          calls = CallsDigest(list);
        }
      }
      index.children[n.parent].push_back(
          Child{n.id, n.content.kind, Digest(n.content), calls, content, reasoning_tokens});
      if (n.content.kind == session::NodeKind::kSummary) {
        if (auto folded = Id::FromHex(n.content.call_id); folded.IsOk())
          index.summaries[*folded].push_back(n.id);
      }
      index.seen_seq = std::max(index.seen_seq, n.seq);
    }
    if (!diff.more || diff.nodes.empty()) return Status::Ok();
  }
}

Result<std::optional<MessageDivergence>> ConversationIndex::Compare(const std::string& tenant,
                                                                    const Id& session,
                                                                    const std::vector<Child>& children,
                                                                    const MessageDraft& message) {
  std::optional<MessageDivergence> best;
  for (const Child& c : children) {
    if (c.kind != message.draft.kind) continue;  // another kind of message is not this one changed
    auto node = ctx_->sessions->GetNode(tenant, session, c.id);
    if (!node.IsOk() || node->IsHidden()) continue;
    std::size_t n = CommonPrefix(message.draft.text, node->content.text);
    if (!best || n > best->byte_offset) {
      best = MessageDivergence{message.message_index, CodePoints(message.draft.text, n), n, c.id};
    }
  }
  return best;
}

const ConversationIndex::Child* ConversationIndex::MatchStep(const std::vector<Child>& kids,
                                                             const std::vector<MessageDraft>& drafts,
                                                             std::size_t matched, bool keep,
                                                             std::size_t* consumed,
                                                             const Child** by_content) {
  const session::NodeDraft& d = drafts[matched].draft;
  Id digest = Digest(d);
  const Child* hit = nullptr;
  for (const Child& c : kids) {
    if (c.kind == d.kind && c.digest == digest) hit = &c;  // the newest equal child wins
  }
  // An assistant message re-sent without its reasoning, against the run's node that has it.
  for (const Child& c : kids) {
    if (hit == nullptr && d.kind == session::NodeKind::kAssistant && !c.content.IsZero() &&
        c.content == digest)
      *by_content = &c;
  }
  // A call group ([assistant] tool_call...) against a run's assistant node with those calls.
  std::size_t first_call = matched + (d.kind == session::NodeKind::kAssistant ? 1 : 0);
  std::size_t end = first_call;
  while (end < drafts.size() && drafts[end].draft.kind == session::NodeKind::kToolCall) ++end;
  if (end > first_call) {
    std::vector<std::array<std::string, 3>> list;
    for (std::size_t i = first_call; i < end; ++i) {
      const session::NodeDraft& c = drafts[i].draft;
      list.push_back({c.call_id, c.tool_name, c.text});
    }
    Id calls = CallsDigest(list);
    for (const Child& c : kids) {
      if (c.kind == session::NodeKind::kAssistant && !c.calls.IsZero() && c.calls == calls) {
        if (!keep && c.reasoning_tokens > 0) {  // strip: the calls are re-rendered without it
          *by_content = &c;
          continue;
        }
        hit = &c;
        *consumed = end - matched;
      }
    }
  }
  return hit;
}

std::size_t ConversationIndex::MatchedDrafts(SessionIndex& index, const std::vector<MessageDraft>& drafts,
                                             std::size_t from, const Id& start, bool jump_at_start,
                                             Walk* walk) {
  if (from == 0 && !drafts.empty() && drafts[0].tools_block) {
    // The generic tools block lists the other tools: any system node at the root stands for it.
    std::size_t best = 0;
    for (const Child& c : index.children[Id()]) {
      if (c.kind == session::NodeKind::kSystem) best = std::max(best, MatchedDrafts(index, drafts, 1, c.id));
    }
    return best;
  }
  Id at = start;
  std::size_t matched = from;
  std::size_t best = from;  // the deepest walk that went on under a summary
  bool first = true;
  while (matched < drafts.size()) {
    if (!first || jump_at_start) {  // or on the compacted branch of a summary that folds to here
      if (auto it = index.summaries.find(at); it != index.summaries.end()) {
        for (const Id& summary : it->second)
          best = std::max(best, MatchedDrafts(index, drafts, matched, summary));
      }
    }
    first = false;
    std::size_t consumed = 1;
    const Child* by_content = nullptr;
    const Child* hit = MatchStep(index.children[at], drafts, matched, true, &consumed, &by_content);
    if (hit == nullptr) hit = by_content;
    if (hit == nullptr) break;
    at = hit->id;
    matched += consumed;
  }
  if (walk != nullptr) {
    walk->under_summary = best > matched;
    walk->at_leaf = index.children[at].empty();
  }
  return std::max(best, matched);
}

Id ConversationIndex::CompactedAt(SessionIndex& index, const Id& at, const std::vector<MessageDraft>& drafts,
                                  std::size_t matched) {
  auto it = index.summaries.find(at);
  if (it == index.summaries.end() || matched >= drafts.size()) return Id();
  // Going on along this branch may reach a later fold whose compacted branch goes deeper.
  Walk on;
  const std::size_t going_on = MatchedDrafts(index, drafts, matched, at, false, &on);
  Id best;
  std::size_t best_depth = matched;
  for (const Id& summary : it->second) {  // oldest first: on a tie the newest wins
    Walk under;
    std::size_t depth = MatchedDrafts(index, drafts, matched, summary, true, &under);
    if (depth <= matched || depth < best_depth) continue;
    // Deeper than going on, or every copy matched (the walk ends at the compacted branch's tip:
    // the turns the original holds beyond it are appended there) unless going on reaches a later
    // compacted branch.
    if (depth >= going_on || (under.at_leaf && !under.under_summary && !on.under_summary)) {
      best = summary;
      best_depth = depth;
    }
  }
  return best;
}

Id ConversationIndex::CompactedCopy(SessionIndex& index, const std::vector<session::Node>& path,
                                    Id* summary) {
  if (path.empty() || index.summaries.empty()) return path.empty() ? Id() : path.back().id;
  for (std::size_t i = path.size() - 1; i-- > 0;) {  // the newest fold first
    auto it = index.summaries.find(path[i].id);
    if (it == index.summaries.end()) continue;
    for (auto s = it->second.rbegin(); s != it->second.rend(); ++s) {
      Id at = *s;
      std::size_t j = i + 1;
      for (; j < path.size(); ++j) {
        const Id digest = Digest(path[j].content);
        const std::vector<Child>& kids = index.children[at];
        auto hit = std::find_if(kids.rbegin(), kids.rend(), [&](const Child& c) {
          return c.kind == path[j].content.kind && c.digest == digest;
        });
        if (hit == kids.rend()) break;
        at = hit->id;
      }
      if (j == path.size()) {
        *summary = *s;
        return at;
      }
    }
  }
  return path.back().id;
}

void ConversationIndex::RememberTools(const std::string& tenant, const Id& session,
                                      std::vector<ToolDigest> tools) {
  std::lock_guard<std::mutex> lock(mu_);
  if (tool_lists_.contains(session)) return;  // a session's list never changes
  tool_lists_[session] = ToolList{tenant, std::move(tools), next_order_++};
}

std::optional<ToolsDivergence> ConversationIndex::ToolListChange(const std::vector<ToolDigest>& before,
                                                                 const std::vector<ToolDigest>& now) {
  for (std::size_t i = 0; i < std::max(before.size(), now.size()); ++i) {
    if (i < before.size() && i < now.size() && before[i] == now[i]) continue;
    if (i >= now.size()) return ToolsDivergence{before[i].name, i, "removed", Id()};
    if (i < before.size() && before[i].name == now[i].name)
      return ToolsDivergence{now[i].name, i, "changed", Id()};
    bool known =
        std::any_of(before.begin(), before.end(), [&](const ToolDigest& t) { return t.name == now[i].name; });
    return ToolsDivergence{now[i].name, i, known ? "moved" : "added", Id()};
  }
  return std::nullopt;
}

Status ConversationIndex::FindToolsDivergence(const std::string& tenant, const Id& session,
                                              const std::vector<MessageDraft>& drafts, std::size_t matched,
                                              Placement* out) {
  // Only a continuation (it re-sends an earlier assistant turn) that this session lacks.
  bool continuation = false;
  for (std::size_t i = matched; i < drafts.size(); ++i) {
    session::NodeKind k = drafts[i].draft.kind;
    continuation = continuation || k == session::NodeKind::kAssistant || k == session::NodeKind::kToolCall;
  }
  if (!continuation) return Status::Ok();
  std::vector<ToolDigest> now;
  std::vector<std::pair<std::uint64_t, Id>> others;  // (order, session), oldest first
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = tool_lists_.find(session); it != tool_lists_.end()) now = it->second.tools;
    for (const auto& [sid, entry] : tool_lists_) {
      if (sid != session && entry.tenant == tenant) others.emplace_back(entry.order, sid);
    }
  }
  std::sort(others.begin(), others.end());
  std::size_t best = matched;
  for (const auto& [order, sid] : others) {
    std::vector<ToolDigest> tools;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tools = tool_lists_[sid].tools;
    }
    LLMSYNC_RETURN_IF_ERROR(CatchUp(tenant, sid));
    std::size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      n = MatchedDrafts(sessions_[sid], drafts);
    }
    if (n <= best) continue;
    if (auto change = ToolListChange(tools, now)) {
      best = n;
      change->session = sid;
      out->tools_divergence = change;
    }
  }
  return Status::Ok();
}

Result<Placement> ConversationIndex::Place(const std::string& tenant, const Id& session, const Id& parent,
                                           std::vector<MessageDraft> drafts, const text::jinja::Value& tools,
                                           ReasoningHistory reasoning, bool dry_run) {
  LLMSYNC_RETURN_IF_ERROR(CatchUp(tenant, session));
  Placement out;
  out.session = session;
  std::vector<session::Node> parent_path;
  bool compacted = false;
  if (!parent.IsZero()) {
    std::lock_guard<std::mutex> lock(mu_);
    compacted = !sessions_[session].summaries.empty();
  }
  if (compacted) {
    LLMSYNC_ASSIGN_OR_RETURN(parent_path, ctx_->sessions->Path(tenant, session, parent));
  }
  out.reasoning_history = reasoning;
  const bool keep = reasoning == ReasoningHistory::kKeep;
  Id at = parent;
  std::size_t matched = 0;        // drafts matched
  std::size_t matched_nodes = 0;  // nodes they matched (a call group matches one node)
  std::vector<Child> siblings;    // the children of `at` where the walk stopped
  {
    std::lock_guard<std::mutex> lock(mu_);
    SessionIndex& index = sessions_[session];
    // Continuing a response whose turns were compacted ahead of time: from their copy.
    if (!parent_path.empty()) at = CompactedCopy(index, parent_path, &out.summary);
    while (matched < drafts.size()) {
      if (Id summary = CompactedAt(index, at, drafts, matched); !summary.IsZero()) {
        at = summary;  // the compacted branch: its copies of the next turns match from here
        out.summary = summary;
      }
      const std::vector<Child>& kids = index.children[at];
      std::size_t consumed = 1;
      const Child* by_content = nullptr;
      const Child* hit = MatchStep(kids, drafts, matched, keep, &consumed, &by_content);
      if (hit == nullptr && by_content != nullptr) {
        ++out.reasoning_turns;  // kept (matched below) or stripped (the walk leaves here)
        out.reasoning_tokens += by_content->reasoning_tokens;
        if (keep) hit = by_content;
      } else if (hit != nullptr && hit->reasoning_tokens > 0) {
        ++out.reasoning_turns;  // a call group kept with the reasoning before it
        out.reasoning_tokens += hit->reasoning_tokens;
      }
      if (hit == nullptr) {
        siblings = kids;
        break;
      }
      at = hit->id;
      matched += consumed;
      ++matched_nodes;
    }
  }
  if (parent.IsZero() && matched < drafts.size()) {
    LLMSYNC_RETURN_IF_ERROR(FindToolsDivergence(tenant, session, drafts, matched, &out));
  }
  if (matched < drafts.size() && !siblings.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(out.divergence, Compare(tenant, session, siblings, drafts[matched]));
  }
  if (!at.IsZero()) {
    LLMSYNC_ASSIGN_OR_RETURN(out.path, ctx_->sessions->Path(tenant, session, at));
  }
  // On a compacted branch every node up to `at` existed (the summary and the copies included),
  // while the folded nodes the walk matched are not on the path.
  if (!out.summary.IsZero()) matched_nodes = out.path.size();
  out.reused_nodes = matched_nodes;
  for (std::size_t i = out.path.size() - std::min(out.path.size(), matched_nodes); i < out.path.size(); ++i) {
    out.reused_tokens += out.path[i].content.tokens.size();
  }
  if (matched < drafts.size()) {
    session::AppendRequest append;
    append.tenant = tenant;
    append.session = session;
    append.parent = at;
    append.move_head = false;
    for (std::size_t i = matched; i < drafts.size(); ++i) append.nodes.push_back(std::move(drafts[i].draft));
    LLMSYNC_RETURN_IF_ERROR(ctx_->sessions->ValidateAppend(append));  // limits before any tokenizing
    LLMSYNC_RETURN_IF_ERROR(ctx_->conversation->Freeze(out.path, &append.nodes, tools));
    if (dry_run) {
      for (session::NodeDraft& d : append.nodes) {
        session::Node n;
        n.content = std::move(d);
        out.path.push_back(std::move(n));
      }
      out.node = at;
      return out;
    }
    LLMSYNC_ASSIGN_OR_RETURN(session::AppendResult appended, ctx_->sessions->Append(append));
    at = appended.ids.back();
    out.appended_nodes = append.nodes.size();
    LLMSYNC_ASSIGN_OR_RETURN(out.path, ctx_->sessions->Path(tenant, session, at));
  }
  out.node = at;
  return out;
}

}  // namespace llmsync::api
