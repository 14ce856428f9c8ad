// OpenAI request messages as node drafts: the edge where chat `messages` and Responses `input`
// become the session tree's segments.
//
// Mapping (docs/PROTOCOL.md, "OpenAI-compatible endpoints"):
//   system / developer -> system node; user -> user node; assistant content -> assistant node;
//   each assistant tool call -> a tool_call node (tool_name = function name, text = arguments,
//   call_id = id); tool -> tool_result node (call_id = tool_call_id, tool_name = name when given).
// Content may be a string or an array of text parts ({type: "text" | "input_text" | "output_text",
// text}); other part types are rejected with kInvalidArgument naming the message.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

#include "api/json_codec.h"
#include "llmsync/status.h"
#include "session/node.h"

namespace llmsync::api {

// One node draft and the index of the request message it came from.
struct MessageDraft {
  session::NodeDraft draft;
  std::size_t message_index = 0;
  bool tools_block = false;  // the generic tools system message (not a client message)
};

// Chat Completions `messages` (a non-empty array).
Result<std::vector<MessageDraft>> ChatMessagesToDrafts(const Json& messages);
// Responses `input` (a string: one user message; or an array of messages / items) after optional
// `instructions` (a system message, counted as message 0 when present).
Result<std::vector<MessageDraft>> ResponseInputToDrafts(const Json& input, const Json* instructions);

// The OpenAI message for a node (for views that list a path as messages).
Json MessageJsonForNode(const session::Node& node);

}  // namespace llmsync::api
