#include "runs/json_schema/tool_call_constraint.h"

#include <algorithm>
#include <limits>

namespace llmsync::runs {

ToolCallConstraint::ToolCallConstraint(std::shared_ptr<const ToolCallGrammar> grammar,
                                       std::shared_ptr<const TokenIndex> index)
    : grammar_(std::move(grammar)), index_(std::move(index)) {
  for (const ToolCallForm& f : grammar_->forms) {
    std::int64_t args = JsonAutomaton::MinLength(*f.schema);
    form_min_.push_back(static_cast<std::int64_t>(f.prefix.size()) + args);
    next_form_min_.push_back(static_cast<std::int64_t>(f.next_prefix.size()) + args);
  }
  std::size_t n = std::min<std::size_t>(grammar_->forms.size(), 64);
  std::uint64_t all = n == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << n) - 1);
  state_.alive = all;
  if (grammar_->free_until_marker) state_.phase = Phase::kFree;
}

bool ToolCallConstraint::Done() const {
  if (state_.phase == Phase::kDone) return true;
  // A call is complete and nothing (no close literal, no end token) has to follow it.
  return state_.phase == Phase::kBetween && grammar_->close.empty() && grammar_->end_tokens.empty();
}

const std::string& ToolCallConstraint::Literal(const State& s, std::size_t i) const {
  return s.calls == 0 ? grammar_->forms[i].prefix : grammar_->forms[i].next_prefix;
}

void ToolCallConstraint::AfterSuffix(State& s) const {
  ++s.calls;
  s.pos = 0;
  if (s.calls < grammar_->max_calls) {
    s.phase = Phase::kBetween;
  } else if (!grammar_->close.empty()) {
    s.phase = Phase::kClose;
  } else {
    AfterClose(s);
  }
}

void ToolCallConstraint::AfterClose(State& s) const {
  s.pos = 0;
  s.phase = grammar_->end_tokens.empty() ? Phase::kDone : Phase::kEnd;
}

bool ToolCallConstraint::FeedByte(State& s, unsigned char c) const {
  const ToolCallGrammar& g = *grammar_;
  switch (s.phase) {
    case Phase::kFree: {
      if (g.marker.empty()) return true;
      s.window.push_back(static_cast<char>(c));
      if (s.window.size() > g.marker.size()) s.window.erase(0, s.window.size() - g.marker.size());
      if (s.window != g.marker) return true;
      s.phase = Phase::kPrefix;
      s.window.clear();
      s.alive = 0;
      for (std::size_t i = 0; i < g.forms.size() && i < 64; ++i) {
        if (g.forms[i].prefix.starts_with(g.marker)) s.alive |= std::uint64_t{1} << i;
      }
      s.pos = g.marker.size();
      return s.alive != 0;
    }
    case Phase::kBetween: {  // another call, or the close literal, or (empty close) the end token
      if (!g.close.empty() && static_cast<unsigned char>(g.close[0]) == c) {
        s.phase = Phase::kClose;
        s.pos = 1;
        if (s.pos == g.close.size()) AfterClose(s);
        return true;
      }
      s.alive = 0;
      for (std::size_t i = 0; i < g.forms.size() && i < 64; ++i) {
        const std::string& p = g.forms[i].next_prefix;
        if (!p.empty() && static_cast<unsigned char>(p[0]) == c) s.alive |= std::uint64_t{1} << i;
      }
      s.phase = Phase::kPrefix;
      s.pos = 1;
      return s.alive != 0;
    }
    case Phase::kPrefix: {
      std::uint64_t next = 0;
      for (std::size_t i = 0; i < g.forms.size() && i < 64; ++i) {
        if ((s.alive & (std::uint64_t{1} << i)) == 0) continue;
        const std::string& p = Literal(s, i);
        if (s.pos == p.size()) {  // this form's prefix is complete: the byte opens its JSON
          JsonAutomaton a(g.forms[i].schema.get());
          if (a.Feed(std::string_view(reinterpret_cast<const char*>(&c), 1))) {
            s.phase = Phase::kJson;
            s.form = i;
            s.automaton.assign(1, std::move(a));
            return true;
          }
        } else if (static_cast<unsigned char>(p[s.pos]) == c) {
          next |= std::uint64_t{1} << i;
        }
      }
      s.alive = next;
      ++s.pos;
      return next != 0;
    }
    case Phase::kJson: {
      JsonAutomaton& a = s.automaton[0];
      if (!a.Feed(std::string_view(reinterpret_cast<const char*>(&c), 1))) return false;
      if (a.Done()) {
        s.automaton.clear();
        s.pos = 0;
        if (!g.suffix.empty()) {
          s.phase = Phase::kSuffix;
        } else {
          AfterSuffix(s);
        }
      }
      return true;
    }
    case Phase::kSuffix:
      if (static_cast<unsigned char>(g.suffix[s.pos]) != c) return false;
      if (++s.pos == g.suffix.size()) AfterSuffix(s);
      return true;
    case Phase::kClose:
      if (static_cast<unsigned char>(g.close[s.pos]) != c) return false;
      if (++s.pos == g.close.size()) AfterClose(s);
      return true;
    case Phase::kEnd:
    case Phase::kDone:
    case Phase::kDead: return false;
  }
  return false;
}

bool ToolCallConstraint::Feed(State& s, std::string_view bytes) const {
  for (char c : bytes) {
    if (!FeedByte(s, static_cast<unsigned char>(c))) {
      s.phase = Phase::kDead;
      return false;
    }
  }
  return true;
}

bool ToolCallConstraint::FeedToken(State& s, session::TokenId token) const {
  const ToolCallGrammar& g = *grammar_;
  bool is_end = std::find(g.end_tokens.begin(), g.end_tokens.end(), token) != g.end_tokens.end();
  if (s.phase == Phase::kEnd) {
    s.phase = is_end ? Phase::kDone : Phase::kDead;
    return is_end;
  }
  if (s.phase == Phase::kBetween && g.close.empty() && is_end) {  // no more calls
    s.phase = Phase::kDone;
    return true;
  }
  for (const auto& [text, id] : g.specials) {
    if (id == token) return Feed(s, text);
  }
  auto index = static_cast<std::size_t>(token);
  const TokenBytes& bytes = *index_->bytes;
  if (token < 0 || index >= bytes.size() || bytes[index].empty()) {
    return s.phase == Phase::kFree;  // control tokens are free text only
  }
  return Feed(s, bytes[index]);
}

std::int64_t ToolCallConstraint::MinRemaining(const State& s) const {
  const ToolCallGrammar& g = *grammar_;
  std::int64_t end = g.end_tokens.empty() ? 0 : 1;
  auto close = static_cast<std::int64_t>(g.close.size());
  auto suffix = static_cast<std::int64_t>(g.suffix.size()) + close;
  switch (s.phase) {
    case Phase::kFree:
    case Phase::kDone: return 0;
    case Phase::kPrefix: {
      const std::vector<std::int64_t>& mins = s.calls == 0 ? form_min_ : next_form_min_;
      std::int64_t best = std::numeric_limits<std::int64_t>::max() / 2;
      for (std::size_t i = 0; i < mins.size() && i < 64; ++i) {
        if ((s.alive & (std::uint64_t{1} << i)) != 0)
          best = std::min(best, mins[i] - static_cast<std::int64_t>(s.pos));
      }
      return best + suffix + end;
    }
    case Phase::kJson: return s.automaton[0].MinRemaining() + suffix + end;
    case Phase::kSuffix: return suffix - static_cast<std::int64_t>(s.pos) + end;
    case Phase::kBetween: return close + end;
    case Phase::kClose: return close - static_cast<std::int64_t>(s.pos) + end;
    case Phase::kEnd: return 1;
    case Phase::kDead: return std::numeric_limits<std::int64_t>::max() / 2;
  }
  return 0;
}

bool ToolCallConstraint::Allowed(const State& s, session::TokenId token, std::int64_t remaining) const {
  State t = s;
  return FeedToken(t, token) && MinRemaining(t) <= remaining - 1;
}

bool ToolCallConstraint::Allows(session::TokenId token, std::int64_t remaining) const {
  if (state_.phase == Phase::kFree) return true;  // auto: text stays free until the marker
  return Allowed(state_, token, remaining);
}

void ToolCallConstraint::Mask(std::span<float> logits, std::int64_t remaining) {
  if (state_.phase == Phase::kFree) return;  // auto: text stays free until the marker
  allow_.assign(logits.size(), 0);
  if (state_.phase != Phase::kEnd && state_.phase != Phase::kDone && state_.phase != Phase::kDead) {
    // Inside a string, plain content is judged by its character count: only the others are walked.
    JsonAutomaton::PlainString plain;
    if (state_.phase == Phase::kJson) plain = state_.automaton[0].InPlainString();
    if (plain.in) index_->AdmitPlain(plain.room, plain.owed, MinRemaining(state_), remaining, &allow_);
    const TokenTrie& trie = plain.in ? index_->not_plain : index_->all;
    trie.Walk(
        state_, levels_, [this](State& s, unsigned char c) { return FeedByte(s, c); },
        [&](session::TokenId id, const State& s) {
          if (static_cast<std::size_t>(id) < allow_.size() && MinRemaining(s) <= remaining - 1)
            allow_[static_cast<std::size_t>(id)] = 1;
        });
  }
  // Tokens that do not stand for their bytes here: judged one by one.
  auto judge = [&](session::TokenId id) {
    if (id >= 0 && static_cast<std::size_t>(id) < allow_.size())
      allow_[static_cast<std::size_t>(id)] = Allowed(state_, id, remaining) ? 1 : 0;
  };
  for (session::TokenId id : grammar_->end_tokens) judge(id);
  for (const auto& special : grammar_->specials) judge(special.second);
  const float masked = -std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < logits.size(); ++i) {
    if (allow_[i] == 0) logits[i] = masked;
  }
}

void ToolCallConstraint::Accept(session::TokenId token) {
  if (state_.phase == Phase::kDead || state_.phase == Phase::kDone) return;
  FeedToken(state_, token);
}

}  // namespace llmsync::runs
