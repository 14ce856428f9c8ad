#include "runs/conversation.h"

#include <optional>

namespace llmsync::runs {
namespace {

using text::jinja::Value;
using text::jinja::ValueDict;
using text::jinja::ValueList;

Value Str(std::string s) { return Value::String(std::move(s)); }

}  // namespace

Value MessageForNode(const session::NodeContent& c) {
  ValueDict m;
  switch (c.kind) {
    case session::NodeKind::kSystem:
    case session::NodeKind::kSummary:
      m.Set(Str("role"), Str("system"));
      m.Set(Str("content"), Str(c.text));
      break;
    case session::NodeKind::kUser:
      m.Set(Str("role"), Str("user"));
      m.Set(Str("content"), Str(c.text));
      break;
    case session::NodeKind::kAssistant:
    case session::NodeKind::kReasoning:
    case session::NodeKind::kTemplate:
      m.Set(Str("role"), Str("assistant"));
      m.Set(Str("content"), Str(c.text));
      break;
    case session::NodeKind::kToolCall: {
      ValueDict fn;
      fn.Set(Str("name"), Str(c.tool_name));
      fn.Set(Str("arguments"), Str(c.text));
      ValueDict call;
      call.Set(Str("id"), Str(c.call_id));
      call.Set(Str("type"), Str("function"));
      call.Set(Str("function"), Value::Dict(std::move(fn)));
      m.Set(Str("role"), Str("assistant"));
      m.Set(Str("content"), Str(""));
      m.Set(Str("tool_calls"), Value::List({Value::Dict(std::move(call))}));
      break;
    }
    case session::NodeKind::kToolResult:
      m.Set(Str("role"), Str("tool"));
      m.Set(Str("content"), Str(c.text));
      m.Set(Str("tool_call_id"), Str(c.call_id));
      m.Set(Str("name"), Str(c.tool_name));
      break;
  }
  return Value::Dict(std::move(m));
}

std::vector<TokenId> Conversation::PathTokens(const std::vector<session::Node>& path) {
  std::vector<TokenId> out;
  for (const session::Node& n : path) out.insert(out.end(), n.content.tokens.begin(), n.content.tokens.end());
  return out;
}

Result<std::string> Conversation::FrozenText(const std::vector<TokenId>& tokens) const {
  text::DecodeOptions options;
  options.render_special = true;
  return tokenizer_->Decode(tokens, options);
}

Result<std::vector<TokenId>> Conversation::TokenizeSegment(std::string_view segment,
                                                           const std::vector<std::string>& contents,
                                                           bool at_sequence_start) const {
  std::vector<TokenId> out;
  const text::SpecialTokens& specials = tokenizer_->Specials();
  text::EncodeOptions scaffold;
  scaffold.parse_special = true;
  scaffold.space_prefix = false;
  text::EncodeOptions plain;
  plain.parse_special = false;
  plain.space_prefix = false;
  if (at_sequence_start && specials.add_bos && specials.bos) {
    auto bos_text = tokenizer_->TokenText(*specials.bos);
    if (!bos_text.IsOk() || segment.substr(0, bos_text->size()) != *bos_text) out.push_back(*specials.bos);
  }
  // The common case: no user content spells a special token, so the whole segment is tokenized
  // at once, exactly as a stateless server would tokenize the prompt.
  bool content_spells_special = false;
  for (const std::string& c : contents) {
    if (c.empty()) continue;
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<TokenId> with, tokenizer_->Encode(c, scaffold));
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<TokenId> without, tokenizer_->Encode(c, plain));
    if (with != without) content_spells_special = true;
  }
  if (!content_spells_special) {
    LLMSYNC_RETURN_IF_ERROR(tokenizer_->EncodeAppend(segment, scaffold, &out));
    return out;
  }
  // Otherwise cut the segment at the verbatim occurrences of user content, left to right, so that
  // text a user typed can never become a control token.
  std::size_t pos = 0;
  while (pos < segment.size()) {
    std::size_t best = std::string_view::npos;
    std::size_t best_len = 0;
    for (const std::string& c : contents) {
      if (c.empty()) continue;
      std::size_t at = segment.find(c, pos);
      if (at != std::string_view::npos && (at < best || (at == best && c.size() > best_len))) {
        best = at;
        best_len = c.size();
      }
    }
    std::size_t scaffold_end = best == std::string_view::npos ? segment.size() : best;
    if (scaffold_end > pos) {
      LLMSYNC_RETURN_IF_ERROR(
          tokenizer_->EncodeAppend(segment.substr(pos, scaffold_end - pos), scaffold, &out));
    }
    if (best == std::string_view::npos) break;
    LLMSYNC_RETURN_IF_ERROR(tokenizer_->EncodeAppend(segment.substr(best, best_len), plain, &out));
    pos = best + best_len;
  }
  return out;
}

Result<bool> Conversation::FreezeBatch(const std::vector<session::Node>& path,
                                       std::vector<session::NodeDraft>* drafts, const Value& tools) const {
  for (const session::NodeDraft& d : *drafts) {
    if (!d.tokens.empty() || d.kind == session::NodeKind::kTemplate) return false;
  }
  ValueList history;
  for (const session::Node& n : path) history.push_back(MessageForNode(n.content));
  std::vector<TokenId> frozen = PathTokens(path);
  std::optional<std::string> frozen_text;
  if (!frozen.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string text, FrozenText(frozen));
    frozen_text = std::move(text);
  }
  auto stable = [](text::SegmentRule rule) {
    return rule == text::SegmentRule::kPrefixStable || rule == text::SegmentRule::kFirstRender;
  };
  // The one render that sees the whole history: every new message at once.
  text::IncrementalRequest full;
  full.history = history;
  for (const session::NodeDraft& d : *drafts) full.new_messages.push_back(MessageForNode(d));
  full.frozen_text = frozen_text;
  full.tools = tools;
  auto whole = template_.RenderIncrement(full);
  if (!whole.IsOk() || !stable(whole->rule)) return false;
  // Each message against the one before it only (the first against the real history).
  std::vector<std::string> segments;
  std::string joined;
  for (std::size_t i = 0; i < drafts->size(); ++i) {
    text::IncrementalRequest req;
    if (i == 0) {
      req.history = history;
      req.frozen_text = frozen_text;
    } else {
      req.history = {full.new_messages[i - 1]};
      LLMSYNC_ASSIGN_OR_RETURN(std::string previous, FrozenText((*drafts)[i - 1].tokens));
      req.frozen_text = std::move(previous);
    }
    req.new_messages = {full.new_messages[i]};
    req.tools = tools;
    auto segment = template_.RenderIncrement(req);
    if (!segment.IsOk() || !stable(segment->rule)) return false;
    joined += segment->text;
    if (!whole->text.starts_with(joined)) return false;
    session::NodeDraft& d = (*drafts)[i];
    std::vector<std::string> contents = {d.text, d.tool_name, d.call_id};
    LLMSYNC_ASSIGN_OR_RETURN(d.tokens, TokenizeSegment(segment->text, contents, i == 0 && frozen.empty()));
  }
  // The per-message segments must add up to the whole: a template whose rendering of a message
  // depends on its position (not just its neighbour) fails here and takes the exact path.
  return joined == whole->text;
}

Status Conversation::Freeze(const std::vector<session::Node>& path, std::vector<session::NodeDraft>* drafts,
                            const Value& tools) const {
  if (drafts->size() > 1) {
    std::vector<session::NodeDraft> batch = *drafts;
    auto fast = FreezeBatch(path, &batch, tools);
    if (fast.IsOk() && *fast) {
      *drafts = std::move(batch);
      return Status::Ok();
    }
  }
  return FreezeEach(path, drafts, tools);
}

Status Conversation::FreezeEach(const std::vector<session::Node>& path,
                                std::vector<session::NodeDraft>* drafts, const Value& tools) const {
  ValueList history;
  std::vector<TokenId> frozen = PathTokens(path);
  for (const session::Node& n : path) history.push_back(MessageForNode(n.content));
  for (session::NodeDraft& d : *drafts) {
    if (d.tokens.empty()) {
      if (d.kind == session::NodeKind::kTemplate) {
        text::EncodeOptions literal;
        literal.parse_special = true;
        literal.space_prefix = false;
        LLMSYNC_ASSIGN_OR_RETURN(d.tokens, tokenizer_->Encode(d.text, literal));
      } else {
        text::IncrementalRequest req;
        req.history = history;
        req.new_messages = {MessageForNode(d)};
        req.tools = tools;
        if (!frozen.empty()) {
          LLMSYNC_ASSIGN_OR_RETURN(std::string frozen_text, FrozenText(frozen));
          req.frozen_text = std::move(frozen_text);
        }
        auto segment = template_.RenderIncrement(req);
        if (!segment.IsOk()) return segment.GetStatus().WithContext("chat template");
        std::vector<std::string> contents = {d.text, d.tool_name, d.call_id};
        LLMSYNC_ASSIGN_OR_RETURN(d.tokens, TokenizeSegment(segment->text, contents, frozen.empty()));
      }
    }
    frozen.insert(frozen.end(), d.tokens.begin(), d.tokens.end());
    history.push_back(MessageForNode(d));
  }
  return Status::Ok();
}

Result<std::vector<TokenId>> Conversation::GenerationPrompt(const std::vector<session::Node>& path) const {
  text::IncrementalRequest req;
  for (const session::Node& n : path) req.history.push_back(MessageForNode(n.content));
  req.add_generation_prompt = true;
  std::vector<TokenId> frozen = PathTokens(path);
  if (!frozen.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string frozen_text, FrozenText(frozen));
    req.frozen_text = std::move(frozen_text);
  }
  auto segment = template_.RenderIncrement(req);
  if (!segment.IsOk()) return segment.GetStatus().WithContext("chat template");
  return TokenizeSegment(segment->text, {}, frozen.empty());
}

}  // namespace llmsync::runs
