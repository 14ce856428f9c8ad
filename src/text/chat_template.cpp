#include "text/chat_template.h"

#include <algorithm>
#include <cctype>

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

// The whitespace tail of `rendered_history` that `frozen` lacks: generation stops at the end-of-
// turn token, so a generated turn misses the newline many templates put after it ("<|im_end|>\n").
// Only short whitespace gaps are restored, and only when what precedes them matches the frozen
// text's end.
std::string FrozenGap(std::string_view frozen, std::string_view rendered_history) {
  constexpr std::size_t kMaxGap = 4;
  constexpr std::size_t kAnchor = 32;
  constexpr std::size_t kMinAnchor = 8;
  for (std::size_t j = 0; j <= std::min(kMaxGap, rendered_history.size()); ++j) {
    std::string_view head = rendered_history.substr(0, rendered_history.size() - j);
    std::string_view gap = rendered_history.substr(head.size());
    bool whitespace =
        std::all_of(gap.begin(), gap.end(), [](char c) { return c == '\n' || c == ' ' || c == '\t'; });
    if (!whitespace) break;
    std::string_view anchor = head.substr(head.size() - std::min(kAnchor, head.size()));
    if (anchor.size() >= std::min(kMinAnchor, rendered_history.size()) && frozen.ends_with(anchor)) {
      return std::string(gap);
    }
  }
  return "";
}

std::size_t CommonSuffix(std::string_view a, std::string_view b) {
  std::size_t n = 0;
  while (n < a.size() && n < b.size() && a[a.size() - 1 - n] == b[b.size() - 1 - n]) ++n;
  return n;
}

// Whether text starts with a tag that closes something: "</x>", "[/INST]", "<|im_end|>",
// "<|END_OF_TURN_TOKEN|>", "<|eot_id|>", "<end_of_turn>", ...
bool StartsWithClosingTag(std::string_view text) {
  if (text.starts_with("</") || text.starts_with("[/")) return true;
  if (!text.starts_with("<")) return false;
  std::size_t close = text.find('>');
  if (close == std::string_view::npos || close > 64) return false;
  std::string name;
  for (char c : text.substr(1, close - 1)) {
    if (c != '|') name.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return name.starts_with("end") || name.starts_with("eot") || name.starts_with("im_end") ||
         name.find("_end") != std::string::npos;
}

// new_text = old_text[:q] + X + old_text[q:] holds for every q in a range ending at `p` (the common
// prefix) when X's last characters equal those just before q: a new "<turn>...</turn>" inserted
// before a "<turn>" trailer reads as well one tag earlier or a few characters later. The history
// ends where the frozen text ends, so a q whose old_text[:q] ends like the frozen text (16 bytes
// or more in common) wins; then a q where X does not open with a closing tag; then one where a tag
// opens ('<' or '[' at q, after '>', ']' or a newline); then the leftmost.
std::size_t InsertionPoint(std::string_view old_text, std::string_view new_text, std::size_t p,
                           const std::optional<std::string_view>& frozen) {
  constexpr std::size_t kMinFrozenMatch = 16;
  auto score = [&](std::size_t q) {
    std::size_t frozen_match =
        frozen ? std::min<std::size_t>(CommonSuffix(old_text.substr(0, q), *frozen), 4096) : 0;
    if (frozen_match < kMinFrozenMatch) frozen_match = 0;
    std::size_t tag = 0;
    if (q < new_text.size() && (new_text[q] == '<' || new_text[q] == '[')) tag += 2;
    if (q > 0 && (new_text[q - 1] == '>' || new_text[q - 1] == ']' || new_text[q - 1] == '\n')) tag += 1;
    std::size_t opens = StartsWithClosingTag(new_text.substr(q)) ? 0 : 1;
    return frozen_match * 8 + opens * 4 + tag;
  };
  std::size_t best = p;
  std::size_t best_score = score(p);
  for (std::size_t q = p;
       q > 0 && p - q < 1024 && old_text[q - 1] == new_text[new_text.size() - (old_text.size() - q) - 1];) {
    --q;
    if (score(q) >= best_score) best = q, best_score = score(q);
  }
  return best;
}

}  // namespace

std::pair<std::size_t, SegmentRule> SplitNewText(std::string_view old_text, std::string_view new_text,
                                                 std::optional<std::string_view> frozen_text) {
  if (new_text.starts_with(old_text)) return {old_text.size(), SegmentRule::kPrefixStable};
  std::size_t p = CommonPrefix(old_text, new_text);
  std::string_view old_tail = old_text.substr(p);
  std::string_view new_tail = new_text.substr(p);
  if (new_tail.size() > old_tail.size() && new_tail.ends_with(old_tail)) {
    return {InsertionPoint(old_text, new_text, p, frozen_text), SegmentRule::kInsertedBeforeTrailer};
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
  std::optional<std::string_view> frozen;
  if (request.frozen_text) frozen = *request.frozen_text;
  auto [split, rule] = SplitNewText(old_text, new_text, frozen);
  segment.rule = rule;
  segment.text = new_text.substr(split);
  std::string history_rendering = new_text.substr(0, split);  // the history as rendered now
  if (request.add_generation_prompt) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string full, RenderMessages(all, request.tools, true, request.extra));
    if (full.starts_with(new_text)) {
      segment.text += full.substr(new_text.size());
    } else if (full.starts_with(std::string_view(new_text).substr(0, split))) {
      segment.text = full.substr(split);
    } else {
      auto [split_full, rule_full] = SplitNewText(old_text, full, frozen);
      segment.rule = rule_full;
      segment.text = full.substr(split_full);
      history_rendering = full.substr(0, split_full);
    }
  }
  if (request.frozen_text) {
    segment.gap = FrozenGap(*request.frozen_text, history_rendering);
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
