#include "text/chat_template.h"

#include <algorithm>

namespace llmsync::text {
namespace {

using jinja::Value;
using jinja::ValueDict;
using jinja::ValueList;

std::size_t CommonPrefix(std::string_view a, std::string_view b) {
  auto mismatch = std::mismatch(
      a.begin(), a.begin() + static_cast<std::ptrdiff_t>(std::min(a.size(), b.size())), b.begin());
  return static_cast<std::size_t>(mismatch.first - a.begin());
}

// The longest suffix of `tail` that occurs somewhere in `text`. Occurrence is monotone in the
// suffix length (a suffix of an occurring suffix occurs too), so a binary search finds it.
std::size_t LongestOccurringSuffix(std::string_view tail, std::string_view text) {
  std::size_t lo = 0;
  std::size_t hi = std::min(tail.size(), text.size());
  while (lo < hi) {
    std::size_t mid = lo + (hi - lo + 1) / 2;
    if (text.find(tail.substr(tail.size() - mid)) != std::string_view::npos) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// The tail of `rendered_history` that `frozen` lacks: the shortest suffix whose removal makes the
// end of rendered_history match the end of frozen.
std::string FrozenGap(std::string_view frozen, std::string_view rendered_history) {
  constexpr std::size_t kMaxGap = 64;
  constexpr std::size_t kAnchor = 32;
  for (std::size_t j = 0; j <= std::min(kMaxGap, rendered_history.size()); ++j) {
    std::string_view head = rendered_history.substr(0, rendered_history.size() - j);
    if (head.empty()) break;
    std::string_view anchor = head.substr(head.size() - std::min(kAnchor, head.size()));
    if (frozen.ends_with(anchor)) return std::string(rendered_history.substr(head.size()));
  }
  return "";
}

}  // namespace

std::pair<std::size_t, SegmentRule> SplitNewText(std::string_view old_text, std::string_view new_text) {
  if (new_text.starts_with(old_text)) return {old_text.size(), SegmentRule::kPrefixStable};
  std::size_t p = CommonPrefix(old_text, new_text);
  std::string_view old_tail = old_text.substr(p);
  std::string_view new_tail = new_text.substr(p);
  if (new_tail.size() > old_tail.size() && new_tail.ends_with(old_tail)) {
    return {p, SegmentRule::kInsertedBeforeTrailer};
  }
  std::size_t len = LongestOccurringSuffix(old_tail, new_tail);
  if (len == 0) return {p, SegmentRule::kRewritten};
  std::size_t at = new_tail.find(old_tail.substr(old_tail.size() - len));
  return {p + at + len, SegmentRule::kRealigned};
}

Result<ChatTemplate> ChatTemplate::Create(std::string_view source, ChatTemplateOptions options) {
  LLMSYNC_ASSIGN_OR_RETURN(jinja::Template tmpl, jinja::Template::Parse(source));
  return ChatTemplate(std::string(source), std::move(tmpl), std::move(options), false);
}

ChatTemplate ChatTemplate::ChatMl(ChatTemplateOptions options) {
  Result<jinja::Template> tmpl = jinja::Template::Parse(kChatMlTemplate);
  assert(tmpl.IsOk());  // a constant known to parse
  return ChatTemplate(std::string(kChatMlTemplate), std::move(tmpl).Value(), std::move(options), true);
}

Result<ChatTemplate> ChatTemplate::ForModel(const std::optional<std::string>& source,
                                            ChatTemplateOptions options) {
  if (!source || source->empty()) return ChatMl(std::move(options));
  return Create(*source, std::move(options));
}

Result<std::string> ChatTemplate::RenderMessages(const ValueList& messages, const Value& tools,
                                                 bool add_generation_prompt, const ValueDict& extra) const {
  ValueDict vars;
  vars.Set(Value::String("bos_token"), Value::String(options_.bos_token));
  vars.Set(Value::String("eos_token"), Value::String(options_.eos_token));
  for (const auto& [key, value] : extra.Entries()) vars.Set(key, value);
  vars.Set(Value::String("messages"), Value::List(messages));
  vars.Set(Value::String("tools"), tools);
  if (vars.FindString("documents") == nullptr) vars.Set(Value::String("documents"), Value::None());
  vars.Set(Value::String("add_generation_prompt"), Value::Bool(add_generation_prompt));
  jinja::RenderOptions render_options;
  render_options.limits = options_.limits;
  render_options.strftime_now = options_.strftime_now;
  return template_.Render(vars, render_options);
}

Result<std::string> ChatTemplate::Render(const ChatRenderRequest& request) const {
  return RenderMessages(request.messages, request.tools, request.add_generation_prompt, request.extra);
}

Result<IncrementalSegment> ChatTemplate::RenderIncrement(const IncrementalRequest& request) const {
  IncrementalSegment segment;
  if (request.history.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(segment.text, RenderMessages(request.new_messages, request.tools,
                                                          request.add_generation_prompt, request.extra));
    segment.rule = SegmentRule::kFirstRender;
    return segment;
  }
  ValueList all = request.history;
  all.insert(all.end(), request.new_messages.begin(), request.new_messages.end());

  Result<std::string> old_render = RenderMessages(request.history, request.tools, false, request.extra);
  if (!old_render.IsOk() && !request.frozen_text) {
    return old_render.GetStatus().WithContext("rendering the frozen history alone");
  }
  std::string old_text = old_render.IsOk() ? std::move(old_render).Value() : *request.frozen_text;
  LLMSYNC_ASSIGN_OR_RETURN(std::string new_text, RenderMessages(all, request.tools, false, request.extra));
  auto [split, rule] = SplitNewText(old_text, new_text);
  segment.rule = rule;
  segment.text = new_text.substr(split);
  if (request.add_generation_prompt) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string full, RenderMessages(all, request.tools, true, request.extra));
    if (full.starts_with(new_text)) {
      segment.text += full.substr(new_text.size());
    } else if (full.starts_with(std::string_view(new_text).substr(0, split))) {
      segment.text = full.substr(split);
    } else {
      auto [split_full, rule_full] = SplitNewText(old_text, full);
      segment.rule = rule_full;
      split = split_full;
      segment.text = full.substr(split_full);
    }
  }
  if (request.frozen_text) {
    segment.gap = FrozenGap(*request.frozen_text, std::string_view(new_text).substr(0, split));
    segment.text = segment.gap + segment.text;
  }
  return segment;
}

Result<std::vector<std::int32_t>> TokenizeSegment(std::string_view segment, const EncodeFn& encode) {
  if (!encode) return Status::InvalidArgument("TokenizeSegment: no encoder given");
  if (segment.empty()) return std::vector<std::int32_t>();
  return encode(segment);
}

Result<IncrementalTokens> RenderIncrementTokens(const ChatTemplate& chat_template,
                                                const IncrementalRequest& request, const EncodeFn& encode) {
  IncrementalTokens out;
  LLMSYNC_ASSIGN_OR_RETURN(out.segment, chat_template.RenderIncrement(request));
  LLMSYNC_ASSIGN_OR_RETURN(out.tokens, TokenizeSegment(out.segment.text, encode));
  return out;
}

}  // namespace llmsync::text
