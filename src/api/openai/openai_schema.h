// Structured output at the API edge: `response_format` (chat) and `text.format` (Responses) into
// the run's constraint spec, and the factory that turns a spec into a token constraint
// (runs/json_schema_constraint.h) when the scheduler prepares the run.
//
// Supported JSON Schema subset: type (a name or an array of names), properties, required, items,
// enum, anyOf, and the annotations title, description, default, examples, $schema, $comment,
// additionalProperties, strict. Any other keyword is a kInvalidArgument naming it. The root must be
// an object. The spec is a compact JSON text ({"type": "json_object"} or {"type": "json_schema",
// "schema": ...}), stored with the run so a resumed run rebuilds the same constraint.
//
// Thread safety: pure functions; the factory is safe for concurrent use.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "api/json_codec.h"
#include "llmsync/status.h"
#include "runs/json_schema/json_schema.h"
#include "runs/json_schema/token_index.h"
#include "runs/json_schema/tool_call_constraint.h"
#include "runs/token_constraint.h"
#include "text/tokenizer.h"

namespace llmsync::api {

// Parses a schema into the typed subset; kInvalidArgument names the unsupported keyword.
Result<runs::JsonSchema> ParseJsonSchema(const Json& schema);
// The constraint spec of a chat `response_format` / Responses `text.format` (empty for text).
Result<std::string> ConstraintSpecFor(const Json& format, bool responses_shape);
// kInvalidArgument when the smallest document of `spec` needs more than `max_tokens` tokens (at one
// byte per token): a constrained run must be able to close its document.
Status CheckConstraintFits(const std::string& spec, std::int64_t max_tokens);

// What every constraint of one tokenizer shares, built once per tokenizer (the factory builds it
// on first use): token bytes and their TokenIndex, control tokens, the end-of-turn token(s).
struct ConstraintTables {
  std::shared_ptr<const runs::TokenBytes> bytes;
  std::shared_ptr<const runs::TokenIndex> index;
  std::vector<std::pair<std::string, session::TokenId>> controls;  // tokens with no visible bytes
  std::vector<session::TokenId> end_of_turn;                       // the preferred end token(s)
};
ConstraintTables BuildConstraintTables(const text::Tokenizer& tokenizer);
// The constraint of `spec`: a JsonSchemaConstraint, or for specs of type "tool_call"
// (api/tools/tool_format.h) a ToolCallConstraint.
Result<std::unique_ptr<runs::TokenConstraint>> MakeConstraint(std::string_view spec,
                                                              const ConstraintTables& tables);
// MakeConstraint with the tables of `tokenizer`. REQUIRES: `tokenizer` outlives the factory.
runs::ConstraintFactory MakeConstraintFactory(const text::Tokenizer& tokenizer);

}  // namespace llmsync::api
