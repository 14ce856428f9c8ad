#include "api/openai/openai_messages.h"

#include <string>

namespace llmsync::api {
namespace {

using session::NodeKind;

std::string Where(std::size_t index) { return "messages[" + std::to_string(index) + "]"; }

// A message's content: a string, null (empty), or an array of text parts.
Result<std::string> ContentText(const Json& content, std::size_t index) {
  if (content.is_null()) return std::string();
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) {
    return Status::InvalidArgument(Where(index) + ".content must be a string or an array of parts");
  }
  std::string text;
  for (const Json& part : content) {
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return Status::InvalidArgument(Where(index) + ".content parts must be objects with a type");
    }
    std::string type = part["type"].get<std::string>();
    if (type != "text" && type != "input_text" && type != "output_text") {
      return Status::InvalidArgument(Where(index) + ".content part type '" + type +
                                     "' is not supported (text only)");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return Status::InvalidArgument(Where(index) + ".content part needs a text string");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

Result<std::string> OptionalString(const Json& j, const char* key, std::size_t index) {
  if (!j.contains(key) || j[key].is_null()) return std::string();
  if (!j[key].is_string()) return Status::InvalidArgument(Where(index) + "." + key + " must be a string");
  return j[key].get<std::string>();
}

Status AddToolCalls(const Json& calls, std::size_t index, std::vector<MessageDraft>* out) {
  if (!calls.is_array()) return Status::InvalidArgument(Where(index) + ".tool_calls must be an array");
  for (const Json& call : calls) {
    if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) {
      return Status::InvalidArgument(Where(index) + ".tool_calls entries need a function object");
    }
    const Json& fn = call["function"];
    MessageDraft d;
    d.message_index = index;
    d.draft.kind = NodeKind::kToolCall;
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.tool_name, OptionalString(fn, "name", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.text, OptionalString(fn, "arguments", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.call_id, OptionalString(call, "id", index));
    if (d.draft.tool_name.empty()) return Status::InvalidArgument(Where(index) + " tool call needs a name");
    out->push_back(std::move(d));
  }
  return Status::Ok();
}

// One role-based message (chat message, or a Responses input message).
Status AddMessage(const Json& m, std::size_t index, std::vector<MessageDraft>* out) {
  if (!m.is_object()) return Status::InvalidArgument(Where(index) + " must be an object");
  if (!m.contains("role") || !m["role"].is_string()) {
    return Status::InvalidArgument(Where(index) + ".role is required");
  }
  std::string role = m["role"].get<std::string>();
  MessageDraft d;
  d.message_index = index;
  // Only an assistant message that carries tool calls may go without content (OpenAI's rule).
  bool has_content = m.contains("content") && !m["content"].is_null();
  bool has_calls = m.contains("tool_calls") && !m["tool_calls"].is_null();
  if (!has_content && !(role == "assistant" && has_calls))
    return Status::InvalidArgument(Where(index) + ".content is required");
  LLMSYNC_ASSIGN_OR_RETURN(d.draft.text, ContentText(m.contains("content") ? m["content"] : Json(), index));
  if (role == "system" || role == "developer") {
    d.draft.kind = NodeKind::kSystem;
  } else if (role == "user") {
    d.draft.kind = NodeKind::kUser;
  } else if (role == "assistant") {
    d.draft.kind = NodeKind::kAssistant;
    if (!d.draft.text.empty() || !has_calls) out->push_back(d);
    if (has_calls) return AddToolCalls(m["tool_calls"], index, out);
    return Status::Ok();
  } else if (role == "tool") {
    d.draft.kind = NodeKind::kToolResult;
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.call_id, OptionalString(m, "tool_call_id", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.tool_name, OptionalString(m, "name", index));
  } else {
    return Status::InvalidArgument(Where(index) + ".role '" + role +
                                   "' is not one of system, developer, user, assistant, tool");
  }
  out->push_back(std::move(d));
  return Status::Ok();
}

// A Responses input item that is not a plain message.
Status AddInputItem(const Json& item, std::size_t index, std::vector<MessageDraft>* out) {
  std::string type = item["type"].get<std::string>();
  MessageDraft d;
  d.message_index = index;
  if (type == "function_call") {
    d.draft.kind = NodeKind::kToolCall;
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.tool_name, OptionalString(item, "name", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.text, OptionalString(item, "arguments", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.call_id, OptionalString(item, "call_id", index));
  } else if (type == "function_call_output") {
    d.draft.kind = NodeKind::kToolResult;
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.call_id, OptionalString(item, "call_id", index));
    LLMSYNC_ASSIGN_OR_RETURN(d.draft.text, OptionalString(item, "output", index));
  } else {
    return Status::InvalidArgument("input[" + std::to_string(index) + "] has unsupported type '" + type +
                                   "'");
  }
  out->push_back(std::move(d));
  return Status::Ok();
}

}  // namespace

Result<std::vector<MessageDraft>> ChatMessagesToDrafts(const Json& messages) {
  if (!messages.is_array() || messages.empty()) {
    return Status::InvalidArgument("messages must be a non-empty array");
  }
  std::vector<MessageDraft> out;
  for (std::size_t i = 0; i < messages.size(); ++i) LLMSYNC_RETURN_IF_ERROR(AddMessage(messages[i], i, &out));
  return out;
}

Result<std::vector<MessageDraft>> ResponseInputToDrafts(const Json& input, const Json* instructions) {
  std::vector<MessageDraft> out;
  std::size_t index = 0;
  if (instructions != nullptr && !instructions->is_null()) {
    if (!instructions->is_string()) return Status::InvalidArgument("instructions must be a string");
    MessageDraft d;
    d.draft.kind = NodeKind::kSystem;
    d.draft.text = instructions->get<std::string>();
    d.message_index = index++;
    out.push_back(std::move(d));
  }
  if (input.is_string()) {
    MessageDraft d;
    d.draft.kind = NodeKind::kUser;
    d.draft.text = input.get<std::string>();
    d.message_index = index;
    out.push_back(std::move(d));
    return out;
  }
  if (!input.is_array() || input.empty()) {
    return Status::InvalidArgument("input must be a string or a non-empty array of items");
  }
  for (std::size_t k = 0; k < input.size(); ++k) {
    const Json& item = input[k];
    std::string where = "input[" + std::to_string(k) + "]";
    if (!item.is_object()) return Status::InvalidArgument(where + " must be an object");
    bool message = !item.contains("type") || (item["type"].is_string() && item["type"] == "message");
    if (!message && !item["type"].is_string())
      return Status::InvalidArgument(where + ".type must be a string");
    Status s = message ? AddMessage(item, index, &out) : AddInputItem(item, index, &out);
    if (!s.IsOk()) {  // name the field as the client sent it: input[k], not the node's message index
      std::string text = s.Message();
      for (const std::string& prefix : {Where(index), "input[" + std::to_string(index) + "]"}) {
        if (text.rfind(prefix, 0) == 0) {
          text = where + text.substr(prefix.size());
          break;
        }
      }
      return Status::InvalidArgument(text);
    }
    ++index;
  }
  return out;
}

Json MessageJsonForNode(const session::Node& node) {
  const session::NodeContent& c = node.content;
  switch (c.kind) {
    case NodeKind::kToolCall:
      return {{"role", "assistant"},
              {"content", nullptr},
              {"tool_calls",
               {{{"id", c.call_id},
                 {"type", "function"},
                 {"function", {{"name", c.tool_name}, {"arguments", c.text}}}}}}};
    case NodeKind::kToolResult: return {{"role", "tool"}, {"tool_call_id", c.call_id}, {"content", c.text}};
    case NodeKind::kSystem:
    case NodeKind::kSummary: return {{"role", "system"}, {"content", c.text}};
    case NodeKind::kUser: return {{"role", "user"}, {"content", c.text}};
    default: return {{"role", "assistant"}, {"content", c.text}};
  }
}

}  // namespace llmsync::api
