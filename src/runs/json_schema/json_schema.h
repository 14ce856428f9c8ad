// JsonSchema and JsonAutomaton: structured output as a byte-level pushdown automaton.
//
// JsonSchema is a typed JSON Schema subset (object with properties / required, array items and
// minItems / maxItems, string with minLength / maxLength, number, integer with minimum / maximum,
// boolean, null, enum,
// anyOf, and "any JSON value"); api/ parses schema
// JSON into it, so this file knows no JSON library. JsonAutomaton accepts exactly the compact
// JSON texts (no whitespace) that validate against the schema, in this canonical form:
//   - objects list their properties in schema order; optional ones may be left out; no others
//     (an object without declared properties, like json_object's root, takes any string keys);
//   - strings are valid UTF-8 without control characters, escapes limited to \" \\ \/ \n \t \r
//     \b \f; numbers are -?(0|[1-9][0-9]*)(.[0-9]+)? with at most 15 integer and 6 fraction
//     digits (integers: no fraction); nesting of schema-less values stops at depth 8.
// The root must be an object, so a document ends exactly at its closing brace.
//
// The automaton's state is a set of alternative stacks (anyOf forks them), each a stack of
// frames. MinRemaining is the fewest bytes that complete the document from the current state:
// a constraint that only allows tokens keeping MinRemaining below the tokens left is guaranteed to
// finish within max_tokens (one-byte tokens for every needed character exist in byte-level and
// byte-fallback vocabularies).
//
// Copying an automaton onto another reuses the target's buffers, and feeding a single stack does
// not allocate: token masks (token_index.h) copy and feed one automaton per trie node.
//
// Thread safety: JsonSchema is immutable once built; a JsonAutomaton is a value used by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace llmsync::runs {

inline constexpr std::int64_t kMaxJsonInteger = 999'999'999'999'999;  // 15 digits

struct JsonSchema {
  enum class Type { kAny, kObject, kArray, kString, kNumber, kInteger, kBoolean, kNull };
  Type type = Type::kAny;
  std::vector<std::string> property_names;   // object: declared properties, in order
  std::vector<JsonSchema> property_schemas;  // parallel to property_names
  std::vector<bool> required;                // parallel to property_names
  std::vector<JsonSchema> items;             // array: exactly one item schema (empty: any)
  std::vector<std::string> enum_literals;    // compact JSON texts of the allowed values
  std::vector<JsonSchema> any_of;            // non-empty: one of these (type is ignored)
  // string: characters (code points; an escape is one); -1: unbounded.
  std::int64_t min_length = 0;
  std::int64_t max_length = -1;
  // array: items; -1: unbounded.
  std::int64_t min_items = 0;
  std::int64_t max_items = -1;
  // integer: inclusive bounds (exclusive ones are converted); the defaults are the automaton's
  // 15-digit range.
  std::int64_t minimum = -kMaxJsonInteger;
  std::int64_t maximum = kMaxJsonInteger;
};

inline constexpr std::size_t kMaxSchemaAlternatives = 64;  // enum values, properties per object

class JsonAutomaton {
 public:
  // REQUIRES: `schema` outlives the automaton and its copies; its root is an object (or anyOf of
  // objects); at most kMaxSchemaAlternatives enum values and properties per node.
  explicit JsonAutomaton(const JsonSchema* schema);

  // Feeds bytes; false (and the state is dead) when they cannot continue a valid document.
  bool Feed(std::string_view bytes);
  bool Dead() const { return stacks_.empty(); }
  // The one live state is inside a string, between characters: any run of k characters without
  // '"', '\\' or control characters, complete and well-formed UTF-8 (a plain run), keeps it
  // alive when room < 0 or k <= room, and lowers MinRemaining by min(k, owed). Structured-output
  // masks use this to admit plain tokens without stepping the automaton.
  struct PlainString {
    bool in = false;
    std::int64_t room = -1;  // characters maxLength still allows (-1: unbounded)
    std::int64_t owed = 0;   // characters minLength still needs
  };
  PlainString InPlainString() const;
  bool Done() const;
  std::int64_t MinRemaining() const;

  // Fewest bytes of a complete value of `schema`.
  static std::int64_t MinLength(const JsonSchema& schema);

 private:
  enum class FrameKind { kValue, kLiteral, kNumber, kString, kObject, kArray, kAnyObject, kAnyArray };
  struct Frame {
    FrameKind kind = FrameKind::kValue;
    const JsonSchema* schema = nullptr;
    const std::vector<std::string>* literals = nullptr;  // kLiteral candidates
    std::uint64_t alive = 0;                             // kLiteral / object key candidates
    std::int32_t pos = 0;                                // bytes into a literal or key
    std::int32_t stage = 0;                              // per-kind progress
    std::int32_t next = 0;   // object: first property index still allowed; string: utf8 bytes owed
    std::int32_t count = 0;  // digits, items, properties so far
    std::int32_t depth = 0;
    std::int64_t value = 0;  // integer: the magnitude of the digits so far
  };
  using Stack = std::vector<Frame>;
  // A frame's answer to a byte: consumed it, rejects it, is complete and leaves the byte to its
  // parent, or pushed a child that must see the byte.
  enum class Step { kConsumed, kReject, kPopRefeed, kRefeed };

  static Frame ValueFrame(const JsonSchema* schema, std::int32_t depth);
  // Feeds one byte to one stack; appends the resulting stacks to `out`.
  static void FeedByte(Stack stack, unsigned char c, std::vector<Stack>* out);
  static Step FeedFrame(Stack& stack, unsigned char c);
  static Step FeedBoundedInteger(Frame& frame, unsigned char c);
  static std::int64_t FrameRemaining(const Frame& frame);
  static std::int64_t StackRemaining(const Stack& stack);

  std::vector<Stack> stacks_;
  std::vector<Stack> scratch_;  // empty between calls: Feed's next stacks, kept for its capacity
};

}  // namespace llmsync::runs
