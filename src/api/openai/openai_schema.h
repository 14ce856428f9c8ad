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

#include <string>

#include "api/json_codec.h"
#include "llmsync/status.h"
#include "runs/json_schema/json_schema.h"
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
// Specs of type "tool_call" (api/tools/tool_format.h) build a ToolCallConstraint.
// REQUIRES: `tokenizer` outlives the factory.
runs::ConstraintFactory MakeConstraintFactory(const text::Tokenizer& tokenizer);

}  // namespace llmsync::api
