#include "runs/json_schema/json_schema.h"

#include <algorithm>
#include <limits>

namespace llmsync::runs {
namespace {

constexpr std::int32_t kMaxAnyDepth = 8;
constexpr std::int32_t kMaxIntDigits = 15;
constexpr std::int32_t kMaxFracDigits = 6;
constexpr std::size_t kMaxStacks = 64;
constexpr std::int64_t kInfinity = std::numeric_limits<std::int64_t>::max() / 4;

const JsonSchema kAnySchema{};
const std::vector<std::string> kBoolLiterals = {"true", "false"};
const std::vector<std::string> kNullLiterals = {"null"};

bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }

std::uint64_t AllBits(std::size_t n) { return n >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1; }

// The key literal of property j: "name": (names are stored JSON-escaped).
std::int32_t KeyLength(const JsonSchema& s, std::size_t j) {
  return static_cast<std::int32_t>(s.property_names[j].size() + 3);
}
char KeyChar(const JsonSchema& s, std::size_t j, std::int32_t pos) {
  const std::string& name = s.property_names[j];
  if (pos == 0) return '"';
  auto p = static_cast<std::size_t>(pos);
  if (p <= name.size()) return name[p - 1];
  return p == name.size() + 1 ? '"' : ':';
}

// Properties that may come next when the first not yet passed is `next`: up to and including the
// first required one.
std::uint64_t AllowedKeys(const JsonSchema& s, std::int32_t next) {
  std::uint64_t mask = 0;
  for (auto j = static_cast<std::size_t>(next); j < s.property_names.size(); ++j) {
    mask |= std::uint64_t{1} << j;
    if (s.required[j]) break;
  }
  return mask;
}

bool AnyRequiredFrom(const JsonSchema& s, std::int32_t next) {
  for (auto j = static_cast<std::size_t>(next); j < s.required.size(); ++j) {
    if (s.required[j]) return true;
  }
  return false;
}

// Bytes of the required properties from `next` on, each preceded by a comma when `comma_first`
// or after the first.
std::int64_t RestRequired(const JsonSchema& s, std::int32_t next, bool comma_first) {
  std::int64_t n = 0;
  bool comma = comma_first;
  for (auto j = static_cast<std::size_t>(next); j < s.property_names.size(); ++j) {
    if (!s.required[j]) continue;
    n += (comma ? 1 : 0) + KeyLength(s, j) + JsonAutomaton::MinLength(s.property_schemas[j]);
    comma = true;
  }
  return n;
}

// The first continuation byte's range after a UTF-8 lead byte (RFC 3629).
bool ContinuationOk(std::int32_t code, unsigned char c) {
  switch (code) {
    case 1: return c >= 0xA0 && c <= 0xBF;  // after E0
    case 2: return c >= 0x80 && c <= 0x9F;  // after ED
    case 3: return c >= 0x90 && c <= 0xBF;  // after F0
    case 4: return c >= 0x80 && c <= 0x8F;  // after F4
    default: return c >= 0x80 && c <= 0xBF;
  }
}

std::int64_t Pow10(std::int32_t n) {
  std::int64_t p = 1;
  for (std::int32_t i = 0; i < n; ++i) p *= 10;
  return p;
}

std::int32_t Digits(std::int64_t v) {
  std::int32_t d = 1;
  while (v >= 10) {
    v /= 10;
    ++d;
  }
  return d;
}

// Integer bounds: the fewest further digits after `digits` digits of magnitude `v` (sign `neg`)
// that reach a value in [lo, hi]; -1 when none does (at most kMaxIntDigits digits in all).
std::int64_t DigitsToReach(bool neg, std::int64_t v, std::int32_t digits, std::int64_t lo, std::int64_t hi) {
  for (std::int32_t m = 0; digits + m <= kMaxIntDigits; ++m) {
    std::int64_t p = Pow10(m);
    std::int64_t low = v * p;
    std::int64_t high = v * p + p - 1;
    std::int64_t a = neg ? -high : low;
    std::int64_t b = neg ? -low : high;
    if (a <= hi && b >= lo) return m;
  }
  return -1;
}

// The fewest bytes of an integer in [lo, hi] (after a '-' already written when `after_minus`).
std::int64_t ShortestInteger(std::int64_t lo, std::int64_t hi, bool after_minus) {
  if (lo <= 0 && hi >= 0) return 1;  // 0 (or -0)
  if (lo > 0) return after_minus ? kInfinity : Digits(lo);
  return (after_minus ? 0 : 1) + Digits(-hi);
}

bool Bounded(const JsonSchema& s) { return s.minimum > -kMaxJsonInteger || s.maximum < kMaxJsonInteger; }

}  // namespace

JsonAutomaton::JsonAutomaton(const JsonSchema* schema) { stacks_.push_back(Stack{ValueFrame(schema, 0)}); }

JsonAutomaton::Frame JsonAutomaton::ValueFrame(const JsonSchema* schema, std::int32_t depth) {
  Frame f;
  f.kind = FrameKind::kValue;
  f.schema = schema;
  f.depth = depth;
  return f;
}

std::int64_t JsonAutomaton::MinLength(const JsonSchema& s) {
  if (!s.any_of.empty()) {
    std::int64_t best = kInfinity;
    for (const JsonSchema& alt : s.any_of) best = std::min(best, MinLength(alt));
    return best;
  }
  if (!s.enum_literals.empty()) {
    std::size_t best = s.enum_literals[0].size();
    for (const std::string& l : s.enum_literals) best = std::min(best, l.size());
    return static_cast<std::int64_t>(best);
  }
  switch (s.type) {
    case JsonSchema::Type::kObject: return 2 + RestRequired(s, 0, false);
    case JsonSchema::Type::kArray: {
      const JsonSchema& item = s.items.empty() ? kAnySchema : s.items[0];
      return 2 + s.min_items * MinLength(item) + std::max<std::int64_t>(0, s.min_items - 1);
    }
    case JsonSchema::Type::kString: return 2 + s.min_length;
    case JsonSchema::Type::kBoolean:
    case JsonSchema::Type::kNull: return 4;
    case JsonSchema::Type::kInteger: return ShortestInteger(s.minimum, s.maximum, false);
    default: return 1;  // a digit
  }
}

bool JsonAutomaton::Done() const {
  return std::any_of(stacks_.begin(), stacks_.end(), [](const Stack& s) { return s.empty(); });
}

bool JsonAutomaton::Feed(std::string_view bytes) {
  for (char ch : bytes) {
    // The stacks move through scratch_ and back, so a single-stack step does not allocate.
    for (Stack& s : stacks_) FeedByte(std::move(s), static_cast<unsigned char>(ch), &scratch_);
    if (scratch_.size() > kMaxStacks) scratch_.resize(kMaxStacks);
    stacks_.swap(scratch_);
    scratch_.clear();
    if (stacks_.empty()) return false;
  }
  return true;
}

void JsonAutomaton::FeedByte(Stack stack, unsigned char c, std::vector<Stack>* out) {
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (top.kind == FrameKind::kValue) {
      const JsonSchema& s = *top.schema;
      if (!s.any_of.empty()) {
        for (const JsonSchema& alt : s.any_of) {
          Stack fork = stack;
          fork.back() = ValueFrame(&alt, top.depth);
          FeedByte(std::move(fork), c, out);
        }
        return;
      }
      if (!s.enum_literals.empty()) {
        top.kind = FrameKind::kLiteral;
        top.literals = &s.enum_literals;
        top.alive = AllBits(s.enum_literals.size());
        continue;
      }
      JsonSchema::Type type = s.type;
      bool nest_ok = top.depth < kMaxAnyDepth;
      if (type == JsonSchema::Type::kAny) {
        if (c == '{' && nest_ok)
          type = JsonSchema::Type::kObject;
        else if (c == '[' && nest_ok)
          type = JsonSchema::Type::kArray;
        else if (c == '"')
          type = JsonSchema::Type::kString;
        else if (c == '-' || IsDigit(c))
          type = JsonSchema::Type::kNumber;
        else if (c == 't' || c == 'f')
          type = JsonSchema::Type::kBoolean;
        else if (c == 'n')
          type = JsonSchema::Type::kNull;
        else
          return;
      }
      switch (type) {
        case JsonSchema::Type::kObject:
          if (c != '{') return;
          top.kind = s.property_names.empty() ? FrameKind::kAnyObject : FrameKind::kObject;
          out->push_back(std::move(stack));
          return;
        case JsonSchema::Type::kArray:
          if (c != '[') return;
          top.kind = s.items.empty() ? FrameKind::kAnyArray : FrameKind::kArray;
          out->push_back(std::move(stack));
          return;
        case JsonSchema::Type::kString:
          if (c != '"') return;
          top.kind = FrameKind::kString;
          out->push_back(std::move(stack));
          return;
        case JsonSchema::Type::kBoolean:
        case JsonSchema::Type::kNull:
          top.kind = FrameKind::kLiteral;
          top.literals = type == JsonSchema::Type::kNull ? &kNullLiterals : &kBoolLiterals;
          top.alive = AllBits(top.literals->size());
          continue;
        default: top.kind = FrameKind::kNumber; continue;
      }
    }
    switch (FeedFrame(stack, c)) {
      case Step::kConsumed: out->push_back(std::move(stack)); return;
      case Step::kReject: return;
      case Step::kRefeed: continue;
      case Step::kPopRefeed:
        stack.pop_back();
        if (stack.empty()) return;  // nothing may follow the document
        continue;
    }
  }
}

JsonAutomaton::Step JsonAutomaton::FeedFrame(Stack& stack, unsigned char c) {
  Frame& f = stack.back();
  switch (f.kind) {
    case FrameKind::kLiteral: {
      const std::vector<std::string>& lits = *f.literals;
      std::uint64_t alive = 0;
      bool complete = false;
      for (std::size_t k = 0; k < lits.size(); ++k) {
        if ((f.alive >> k & 1) == 0) continue;
        if (lits[k].size() == static_cast<std::size_t>(f.pos)) complete = true;
        if (lits[k].size() > static_cast<std::size_t>(f.pos) &&
            static_cast<unsigned char>(lits[k][f.pos]) == c)
          alive |= std::uint64_t{1} << k;
      }
      if (alive == 0) return complete ? Step::kPopRefeed : Step::kReject;
      f.alive = alive;
      ++f.pos;
      bool longer = false;
      bool exact = false;
      for (std::size_t k = 0; k < lits.size(); ++k) {
        if ((alive >> k & 1) == 0) continue;
        (lits[k].size() == static_cast<std::size_t>(f.pos) ? exact : longer) = true;
      }
      if (exact && !longer) stack.pop_back();
      return Step::kConsumed;
    }
    case FrameKind::kNumber: {
      bool integer = f.schema->type == JsonSchema::Type::kInteger;
      if (integer && Bounded(*f.schema)) return FeedBoundedInteger(f, c);
      switch (f.stage) {
        case 0:
        case 1:
          if (c == '-' && f.stage == 0) {
            f.stage = 1;
          } else if (c == '0') {
            f.stage = 3;
          } else if (IsDigit(c)) {
            f.stage = 2;
            f.count = 1;
          } else {
            return Step::kReject;
          }
          return Step::kConsumed;
        case 2:
        case 3:
          if (f.stage == 2 && IsDigit(c) && f.count < kMaxIntDigits) {
            ++f.count;
          } else if (c == '.' && !integer) {
            f.stage = 4;
          } else {
            return Step::kPopRefeed;
          }
          return Step::kConsumed;
        case 4:
          if (!IsDigit(c)) return Step::kReject;
          f.stage = 5;
          f.pos = 1;
          return Step::kConsumed;
        default:
          if (IsDigit(c) && f.pos < kMaxFracDigits) {
            ++f.pos;
            return Step::kConsumed;
          }
          return Step::kPopRefeed;
      }
    }
    case FrameKind::kString: {
      if (f.next > 0) {
        if (!ContinuationOk(f.pos, c)) return Step::kReject;
        --f.next;
        f.pos = 0;
        return Step::kConsumed;
      }
      if (f.stage == 1) {
        if (std::string_view("\"\\/bfnrt").find(static_cast<char>(c)) == std::string_view::npos)
          return Step::kReject;
        f.stage = 0;
        return Step::kConsumed;
      }
      if (c == '"') {
        if (f.count < f.schema->min_length) return Step::kReject;
        stack.pop_back();
        return Step::kConsumed;
      }
      // Every other byte here starts a character (`count` counts them as they start).
      if (f.schema->max_length >= 0 && f.count >= f.schema->max_length) return Step::kReject;
      ++f.count;
      if (c == '\\') {
        f.stage = 1;
      } else if (c < 0x20) {
        return Step::kReject;
      } else if (c >= 0x80) {
        if (c >= 0xC2 && c <= 0xDF) {
          f.next = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
          f.next = 2;
          f.pos = c == 0xE0 ? 1 : (c == 0xED ? 2 : 0);
        } else if (c >= 0xF0 && c <= 0xF4) {
          f.next = 3;
          f.pos = c == 0xF0 ? 3 : (c == 0xF4 ? 4 : 0);
        } else {
          return Step::kReject;
        }
      }
      return Step::kConsumed;
    }
    case FrameKind::kObject: {
      const JsonSchema& s = *f.schema;
      if (f.stage == 0) {
        if (c == '}') {
          if (AnyRequiredFrom(s, f.next)) return Step::kReject;
          stack.pop_back();
          return Step::kConsumed;
        }
        std::uint64_t allowed = AllowedKeys(s, f.next);
        if (allowed == 0) return Step::kReject;
        if (f.count > 0 && c == ',') {
          f.stage = 1;
          return Step::kConsumed;
        }
        if (f.count > 0 || c != '"') return Step::kReject;
        f.stage = 2;
        f.alive = allowed;
        f.pos = 1;
        return Step::kConsumed;
      }
      if (f.stage == 1) {
        if (c != '"') return Step::kReject;
        f.stage = 2;
        f.alive = AllowedKeys(s, f.next);
        f.pos = 1;
        return Step::kConsumed;
      }
      std::uint64_t alive = 0;
      for (std::size_t j = 0; j < s.property_names.size(); ++j) {
        if ((f.alive >> j & 1) != 0 && f.pos < KeyLength(s, j) &&
            static_cast<unsigned char>(KeyChar(s, j, f.pos)) == c)
          alive |= std::uint64_t{1} << j;
      }
      if (alive == 0) return Step::kReject;
      f.alive = alive;
      ++f.pos;
      for (std::size_t j = 0; j < s.property_names.size(); ++j) {
        if ((alive >> j & 1) != 0 && KeyLength(s, j) == f.pos) {
          f.stage = 0;
          f.next = static_cast<std::int32_t>(j + 1);
          ++f.count;
          std::int32_t depth = f.depth + 1;
          stack.push_back(ValueFrame(&s.property_schemas[j], depth));
          break;
        }
      }
      return Step::kConsumed;
    }
    case FrameKind::kAnyObject: {
      if (f.stage == 0) {
        if (c == '}') {
          stack.pop_back();
          return Step::kConsumed;
        }
        if (f.count > 0 && c == ',') {
          f.stage = 1;
          return Step::kConsumed;
        }
        if (f.count > 0 || c != '"') return Step::kReject;
      } else if (f.stage == 1) {
        if (c != '"') return Step::kReject;
      } else {  // stage 3: after the key
        if (c != ':') return Step::kReject;
        f.stage = 0;
        ++f.count;
        std::int32_t depth = f.depth + 1;
        stack.push_back(ValueFrame(&kAnySchema, depth));
        return Step::kConsumed;
      }
      f.stage = 3;
      Frame key;
      key.kind = FrameKind::kString;
      key.schema = &kAnySchema;
      stack.push_back(key);
      return Step::kConsumed;
    }
    default: {  // kArray, kAnyArray
      const JsonSchema* item = f.kind == FrameKind::kArray ? &f.schema->items[0] : &kAnySchema;
      bool full = f.schema->max_items >= 0 && f.count >= f.schema->max_items;
      if (f.stage != 2 && c == ']') {
        if (f.count < f.schema->min_items) return Step::kReject;
        stack.pop_back();
        return Step::kConsumed;
      }
      if (full) return Step::kReject;
      if (f.stage == 1) {
        if (c != ',') return Step::kReject;
        f.stage = 2;
        return Step::kConsumed;
      }
      f.stage = 1;
      ++f.count;
      std::int32_t depth = f.depth + 1;
      stack.push_back(ValueFrame(item, depth));
      return Step::kRefeed;  // the byte starts the item
    }
  }
}

// An integer with minimum / maximum: the plain integer grammar, refusing every byte after which no
// completion lands in the bounds, and ending only on a value inside them.
JsonAutomaton::Step JsonAutomaton::FeedBoundedInteger(Frame& f, unsigned char c) {
  const JsonSchema& s = *f.schema;
  bool neg = f.stage == 1 || f.pos == 1;
  if (f.stage == 0 && c == '-') {
    if (s.minimum > 0) return Step::kReject;
    f.stage = 1;
    f.pos = 1;  // negative
    return Step::kConsumed;
  }
  if (f.stage == 0 || f.stage == 1) {
    if (!IsDigit(c)) return Step::kReject;
    std::int64_t v = c - '0';
    if (v == 0) {
      if (s.minimum > 0 || s.maximum < 0) return Step::kReject;
      f.stage = 3;
      return Step::kConsumed;
    }
    if (DigitsToReach(neg, v, 1, s.minimum, s.maximum) < 0) return Step::kReject;
    f.stage = 2;
    f.count = 1;
    f.value = v;
    return Step::kConsumed;
  }
  if (f.stage == 2 && IsDigit(c) && f.count < kMaxIntDigits) {
    std::int64_t v = f.value * 10 + (c - '0');
    if (DigitsToReach(neg, v, f.count + 1, s.minimum, s.maximum) < 0) return Step::kReject;
    f.value = v;
    ++f.count;
    return Step::kConsumed;
  }
  std::int64_t value = neg ? -f.value : f.value;  // stage 3: 0
  if (value < s.minimum || value > s.maximum) return Step::kReject;
  return Step::kPopRefeed;
}

std::int64_t JsonAutomaton::FrameRemaining(const Frame& f) {
  switch (f.kind) {
    case FrameKind::kValue: return MinLength(*f.schema);
    case FrameKind::kLiteral: {
      std::int64_t best = kInfinity;
      for (std::size_t k = 0; k < f.literals->size(); ++k) {
        if ((f.alive >> k & 1) != 0)
          best = std::min<std::int64_t>(best, static_cast<std::int64_t>((*f.literals)[k].size()) - f.pos);
      }
      return best;
    }
    case FrameKind::kNumber: {
      const JsonSchema& s = *f.schema;
      if (s.type == JsonSchema::Type::kInteger && Bounded(s)) {
        if (f.stage == 0) return ShortestInteger(s.minimum, s.maximum, false);
        if (f.stage == 1) return ShortestInteger(s.minimum, std::min<std::int64_t>(s.maximum, 0), true);
        if (f.stage == 3) return 0;
        return DigitsToReach(f.pos == 1, f.value, f.count, s.minimum, s.maximum);
      }
      return (f.stage == 0 || f.stage == 1 || f.stage == 4) ? 1 : 0;
    }
    case FrameKind::kString:
      return f.next + (f.stage == 1 ? 1 : 0) + 1 + std::max<std::int64_t>(0, f.schema->min_length - f.count);
    case FrameKind::kObject: {
      const JsonSchema& s = *f.schema;
      if (f.stage == 0) return RestRequired(s, f.next, f.count > 0) + 1;
      std::int64_t best = kInfinity;
      std::uint64_t alive = f.stage == 1 ? AllowedKeys(s, f.next) : f.alive;
      std::int32_t pos = f.stage == 1 ? 0 : f.pos;
      for (std::size_t j = 0; j < s.property_names.size(); ++j) {
        if ((alive >> j & 1) == 0) continue;
        best = std::min(best, KeyLength(s, j) - pos + MinLength(s.property_schemas[j]) +
                                  RestRequired(s, static_cast<std::int32_t>(j + 1), true));
      }
      return best + 1;
    }
    case FrameKind::kAnyObject: return f.stage == 0 ? 1 : (f.stage == 1 ? 5 : 3);
    default: {  // arrays: the items still owed to minItems, with their commas, then ']'
      std::int64_t item = MinLength(f.kind == FrameKind::kArray ? f.schema->items[0] : kAnySchema);
      std::int64_t owed = std::max<std::int64_t>(0, f.schema->min_items - f.count);
      if (f.stage == 0) return owed * item + std::max<std::int64_t>(0, owed - 1) + 1;
      if (f.stage == 1) return owed * (item + 1) + 1;
      return item + std::max<std::int64_t>(0, owed - 1) * (item + 1) + 1;  // after a comma
    }
  }
}

std::int64_t JsonAutomaton::StackRemaining(const Stack& stack) {
  std::int64_t n = 0;
  for (const Frame& f : stack) n += FrameRemaining(f);
  return n;
}

JsonAutomaton::PlainString JsonAutomaton::InPlainString() const {
  PlainString p;
  if (stacks_.size() != 1 || stacks_[0].empty()) return p;
  const Frame& top = stacks_[0].back();
  if (top.kind != FrameKind::kString || top.next != 0 || top.stage != 0) return p;
  p.in = true;
  if (top.schema->max_length >= 0) p.room = std::max<std::int64_t>(0, top.schema->max_length - top.count);
  p.owed = std::max<std::int64_t>(0, top.schema->min_length - top.count);
  return p;
}

std::int64_t JsonAutomaton::MinRemaining() const {
  std::int64_t best = kInfinity;
  for (const Stack& s : stacks_) best = std::min(best, StackRemaining(s));
  return best;
}

}  // namespace llmsync::runs
