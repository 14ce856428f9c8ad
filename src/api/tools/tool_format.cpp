#include "api/tools/tool_format.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <optional>

namespace llmsync::api {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

std::string_view LStrip(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  return s;
}
std::string_view RStrip(std::string_view s) {
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}
std::string_view Strip(std::string_view s) { return RStrip(LStrip(s)); }

// The end (one past the closing bracket) of the JSON object or array that opens at `start`, or npos.
std::size_t JsonEnd(std::string_view text, std::size_t start) {
  if (start >= text.size() || (text[start] != '{' && text[start] != '[')) return std::string_view::npos;
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = start; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return std::string_view::npos;
}

std::string ArgumentsText(const Json& args) {
  if (args.is_string()) return args.get<std::string>();
  if (args.is_null()) return "{}";
  return DumpJson(args);
}

// A call object: {"name"|"tool_name": N, "arguments"|"parameters": A}.
std::optional<ParsedCall> CallFromObject(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  ParsedCall call;
  const char* name_key = j.contains("name") ? "name" : "tool_name";
  if (!j.contains(name_key) || !j[name_key].is_string()) return std::nullopt;
  call.name = j[name_key].get<std::string>();
  if (j.contains("arguments")) {
    call.arguments = ArgumentsText(j["arguments"]);
  } else if (j.contains("parameters")) {
    call.arguments = ArgumentsText(j["parameters"]);
  } else {
    call.arguments = "{}";
  }
  return call;
}

// Calls from a JSON object or an array of call objects; nullopt when any is malformed.
std::optional<std::vector<ParsedCall>> CallsFromJson(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::nullopt;
  std::vector<ParsedCall> out;
  if (j.is_array()) {
    if (j.empty()) return std::nullopt;
    for (const Json& e : j) {
      auto c = CallFromObject(e);
      if (!c) return std::nullopt;
      out.push_back(std::move(*c));
    }
    return out;
  }
  auto c = CallFromObject(j);
  if (!c) return std::nullopt;
  out.push_back(std::move(*c));
  return out;
}

// Accumulates content pieces around markup blocks: whitespace next to a block is dropped.
struct ContentBuilder {
  std::string content;
  bool after_block = false;
  void Text(std::string_view piece, bool before_block) {
    if (after_block) piece = LStrip(piece);
    if (before_block) piece = RStrip(piece);
    content.append(piece);
  }
};

// Families whose calls are delimited by an open and a close tag around JSON (Hermes, generic,
// functionary v3.1 with the name in the open tag, Command R).
void ParseTagged(std::string_view text, std::string_view open, std::string_view close, bool name_in_tag,
                 ParsedOutput* out) {
  ContentBuilder b;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t at = text.find(open, pos);
    if (at == std::string_view::npos) break;
    std::size_t body = at + open.size();
    std::string name;
    if (name_in_tag) {
      std::size_t gt = text.find('>', body);
      if (gt == std::string_view::npos) break;
      name = std::string(text.substr(body, gt - body));
      body = gt + 1;
    }
    // The block ends at the close tag after its JSON (strings may spell the close tag), else at the
    // first close tag.
    std::size_t json_at = body;
    while (json_at < text.size() && IsSpace(text[json_at])) ++json_at;
    std::size_t json_end = JsonEnd(text, json_at);
    std::size_t end = std::string_view::npos;
    if (json_end != std::string_view::npos) {
      std::size_t after = json_end;
      while (after < text.size() && IsSpace(text[after])) ++after;
      if (text.substr(after, close.size()) == close || after == text.size()) end = after;
    }
    if (end == std::string_view::npos) end = text.find(close, body);
    std::string_view inner =
        text.substr(body, end == std::string_view::npos ? std::string_view::npos : end - body);
    std::size_t next =
        end == std::string_view::npos ? text.size() : std::min(text.size(), end + close.size());
    std::optional<std::vector<ParsedCall>> calls;
    if (name_in_tag) {
      Json args = Json::parse(Strip(inner), nullptr, false);
      if (!args.is_discarded() && args.is_object()) calls = std::vector<ParsedCall>{{name, DumpJson(args)}};
    } else {
      calls = CallsFromJson(Strip(inner));
    }
    if (!calls) {  // not a call: it stays text
      b.Text(text.substr(pos, next - pos), false);
      b.after_block = false;
      pos = next;
      continue;
    }
    b.Text(text.substr(pos, at - pos), true);
    for (ParsedCall& c : *calls) out->calls.push_back(std::move(c));
    b.after_block = true;
    pos = next;
  }
  if (pos < text.size()) b.Text(text.substr(pos), false);
  out->content = std::move(b.content);
}

// A JSON value at the start of the text (after optional markers), as calls; the rest is content.
void ParseLeadingJson(std::string_view text, std::initializer_list<std::string_view> markers,
                      ParsedOutput* out) {
  std::string_view s = LStrip(text);
  for (std::string_view m : markers) {
    if (s.starts_with(m)) s = LStrip(s.substr(m.size()));
  }
  std::size_t end = JsonEnd(s, 0);
  if (end != std::string_view::npos) {
    auto calls = CallsFromJson(s.substr(0, end));
    if (calls) {
      out->calls = std::move(*calls);
      out->content = std::string(LStrip(s.substr(end)));
      return;
    }
  }
  out->content = std::string(text);
}

// A marker anywhere, followed by a JSON array or object of calls (Mistral, firefunction).
void ParseMarkedJson(std::string_view text, std::string_view marker, ParsedOutput* out) {
  std::size_t at = text.find(marker);
  if (at == std::string_view::npos) {
    ParseLeadingJson(text, {}, out);
    return;
  }
  std::string_view after = LStrip(text.substr(at + marker.size()));
  std::size_t end = JsonEnd(after, 0);
  auto calls = end == std::string_view::npos ? std::nullopt : CallsFromJson(after.substr(0, end));
  if (!calls) {
    out->content = std::string(text);
    return;
  }
  out->calls = std::move(*calls);
  out->content = std::string(RStrip(text.substr(0, at))) + std::string(LStrip(after.substr(end)));
}

// functionary v3.2: "NAME\n{...}>>>NAME\n{...}" (the generation prompt ends with ">>>"), "all\n"
// for text.
void ParseFunctionary(std::string_view text, ParsedOutput* out) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view recipient =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    bool name_ok = !recipient.empty() && std::all_of(recipient.begin(), recipient.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
    });
    std::size_t body = nl == std::string_view::npos ? text.size() : nl + 1;
    std::size_t next_marker = text.find(">>>", body);
    std::size_t json_end = recipient == "all" ? std::string_view::npos : JsonEnd(text, body);
    if (name_ok && json_end != std::string_view::npos) {
      Json args = Json::parse(text.substr(body, json_end - body), nullptr, false);
      if (!args.is_discarded() && args.is_object()) {
        out->calls.push_back({std::string(recipient), DumpJson(args)});
        pos = text.substr(json_end, 3) == ">>>" ? json_end + 3 : json_end;
        if (pos == json_end) {  // text after a call without a new recipient is content
          out->content += std::string(LStrip(text.substr(json_end)));
          return;
        }
        continue;
      }
    }
    std::size_t piece_end = next_marker == std::string_view::npos ? text.size() : next_marker;
    out->content += std::string(recipient == "all" ? text.substr(body, piece_end - body)
                                                   : text.substr(pos, piece_end - pos));
    pos = next_marker == std::string_view::npos ? text.size() : next_marker + 3;
  }
}

std::string Quoted(const std::string& s) { return DumpJson(Json(s)); }

struct FormShape {
  std::string prefix;       // the first call, opening markup included
  std::string next_prefix;  // a later call in the same turn (empty: one call per turn)
  std::string suffix;       // after each call's arguments
  std::string close;        // after the last call
  std::string marker;       // auto: the text that opens a call
};

FormShape ShapeFor(ToolFamily family, const std::string& name) {
  switch (family) {
    case ToolFamily::kHermes:
    case ToolFamily::kGeneric: {
      std::string call = "<tool_call>\n{\"name\":" + Quoted(name) + ",\"arguments\":";
      return {call, "\n" + call, "}\n</tool_call>", "", "<tool_call>"};
    }
    case ToolFamily::kLlama3: return {"{\"name\":" + Quoted(name) + ",\"parameters\":", "", "}", "", ""};
    case ToolFamily::kMistral: {
      std::string call = "{\"name\":" + Quoted(name) + ",\"arguments\":";
      return {"[TOOL_CALLS][" + call, "," + call, "}", "]", "[TOOL_CALLS]"};
    }
    case ToolFamily::kFunctionary: return {name + "\n", ">>>" + name + "\n", "", "", ""};
    case ToolFamily::kFunctionaryV31: {
      std::string call = "<function=" + name + ">";
      return {call, call, "</function>", "", "<function="};
    }
    case ToolFamily::kFirefunction: {
      std::string call = "{\"name\":" + Quoted(name) + ",\"arguments\":";
      return {" functools[" + call, "," + call, "}", "]", " functools["};
    }
    case ToolFamily::kCommandR:
      return {"<|START_ACTION|>[{\"tool_call_id\":\"0\",\"tool_name\":" + Quoted(name) + ",\"parameters\":",
              "", "}", "]<|END_ACTION|>", "<|START_ACTION|>"};
  }
  return {};
}

// The texts that open markup in a family's output (for stream hold-back).
std::vector<std::string_view> Markers(ToolFamily family) {
  switch (family) {
    case ToolFamily::kHermes:
    case ToolFamily::kGeneric: return {"<tool_call>", "<think>", "</think>"};
    case ToolFamily::kLlama3: return {"<|python_tag|>", "<think>", "</think>"};
    case ToolFamily::kMistral: return {"[TOOL_CALLS]", "<think>", "</think>"};
    case ToolFamily::kFunctionary: return {">>>", "<think>", "</think>"};
    case ToolFamily::kFunctionaryV31: return {"<function=", "<think>", "</think>"};
    case ToolFamily::kFirefunction: return {" functools[", "<think>", "</think>"};
    case ToolFamily::kCommandR: return {"<|START_ACTION|>", "Action:", "<think>", "</think>"};
  }
  return {};
}

// Families whose calls may be bare JSON at the very start of the output.
bool LeadingJsonCalls(ToolFamily family) {
  return family == ToolFamily::kLlama3 || family == ToolFamily::kMistral || family == ToolFamily::kCommandR;
}

void ParseCalls(ToolFamily family, std::string_view text, ParsedOutput* out) {
  switch (family) {
    case ToolFamily::kHermes:
    case ToolFamily::kGeneric: ParseTagged(text, "<tool_call>", "</tool_call>", false, out); return;
    case ToolFamily::kLlama3: ParseLeadingJson(text, {"<|python_tag|>"}, out); return;
    case ToolFamily::kMistral: ParseMarkedJson(text, "[TOOL_CALLS]", out); return;
    case ToolFamily::kFunctionary: ParseFunctionary(text, out); return;
    case ToolFamily::kFunctionaryV31: ParseTagged(text, "<function=", "</function>", true, out); return;
    case ToolFamily::kFirefunction: ParseMarkedJson(text, " functools", out); return;
    case ToolFamily::kCommandR:
      if (text.find("<|START_ACTION|>") != std::string_view::npos) {
        ParseTagged(text, "<|START_ACTION|>", "<|END_ACTION|>", false, out);
      } else if (text.find("Action:") != std::string_view::npos) {
        ParseTagged(text, "Action: ```json", "```", false, out);
      } else {
        ParseLeadingJson(text, {}, out);
      }
      return;
  }
}

}  // namespace

std::string_view ToolFamilyName(ToolFamily family) {
  switch (family) {
    case ToolFamily::kHermes: return "hermes";
    case ToolFamily::kLlama3: return "llama3";
    case ToolFamily::kMistral: return "mistral";
    case ToolFamily::kFunctionary: return "functionary-v3.2";
    case ToolFamily::kFunctionaryV31: return "functionary-v3.1";
    case ToolFamily::kFirefunction: return "firefunction";
    case ToolFamily::kCommandR: return "command-r";
    case ToolFamily::kGeneric: return "generic";
  }
  return "generic";
}

ToolFamily DetectToolFamily(std::string_view src) {
  auto has = [&](std::string_view s) { return src.find(s) != std::string_view::npos; };
  if (has("<tool_call>")) return ToolFamily::kHermes;
  if (has("[TOOL_CALLS]")) return ToolFamily::kMistral;
  if (has("functools")) return ToolFamily::kFirefunction;
  if (has(">>>")) return ToolFamily::kFunctionary;
  if (has("<function=")) return ToolFamily::kFunctionaryV31;
  if (has("<|START_ACTION|>") || has("tool_name") || has("directly_answer")) return ToolFamily::kCommandR;
  if (has("<|python_tag|>") || (has("<|start_header_id|>") && has("\"parameters\"") && has("tools")))
    return ToolFamily::kLlama3;
  return ToolFamily::kGeneric;
}

bool TemplateRendersTools(std::string_view src) { return src.find("tools") != std::string_view::npos; }

bool TemplateThinks(std::string_view src) {
  return src.find("<think>") != std::string_view::npos || src.find("</think>") != std::string_view::npos;
}

namespace {

// Where the first call markup starts in `text` (text.size() when none).
std::size_t FirstCallMarker(ToolFamily family, std::string_view text) {
  std::size_t first_call = text.size();
  for (std::string_view m : Markers(family)) {
    if (m != "<think>" && m != "</think>") first_call = std::min(first_call, text.find(m));
  }
  return first_call;
}

}  // namespace

ParsedOutput ParseModelOutput(ToolFamily family, std::string_view text) {
  ParsedOutput out;
  std::string_view rest = text;
  // Reasoning opens the output ("<think>" first, or only "</think>" when the generation prompt
  // opened it) and ends at "</think>" or at the first call markup, whichever comes first: a
  // "</think>" inside call arguments is not one, and a call written before the reasoning closed
  // is still a call (never swallowed by the reasoning).
  std::size_t first_call = FirstCallMarker(family, text);
  bool opens = LStrip(text).starts_with("<think>");
  bool open_reasoning = false;  // calls came before the reasoning closed
  std::size_t close = text.find("</think>");
  if (close != std::string_view::npos && close < first_call) {
    std::size_t from = opens ? text.find("<think>") + 7 : 0;
    out.reasoning = std::string(Strip(rest.substr(from, close - from)));
    rest = LStrip(rest.substr(close + 8));
  } else if (opens) {
    std::size_t from = text.find("<think>") + 7;
    out.reasoning = std::string(Strip(text.substr(from, first_call - from)));
    if (first_call == text.size()) return out;  // still thinking (stopped at max_tokens)
    rest = text.substr(first_call);
    open_reasoning = true;
  }
  ParseCalls(family, rest, &out);
  // A reasoning block that closes after the calls: its text joins the reasoning, not the content.
  if (std::size_t late = out.content.find("</think>"); open_reasoning && late != std::string::npos) {
    std::string_view tail = Strip(std::string_view(out.content).substr(0, late));
    if (!tail.empty()) out.reasoning += (out.reasoning.empty() ? "" : "\n") + std::string(tail);
    out.content = std::string(LStrip(std::string_view(out.content).substr(late + 8)));
  }
  return out;
}

std::string StreamableReasoning(ToolFamily family, std::string_view text) {
  std::string_view s = LStrip(text);
  if (!s.starts_with("<think>")) return std::string();
  std::string_view region = s.substr(7);
  std::size_t end = std::min(region.find("</think>"), FirstCallMarker(family, region));
  if (end != std::string_view::npos && end < region.size()) return std::string(Strip(region.substr(0, end)));
  // Still open: hold back a partial "</think>" or call marker at the end, and trailing whitespace
  // (the final reasoning is stripped).
  std::size_t held = 0;
  for (std::string_view m : Markers(family)) {
    for (std::size_t k = std::min(m.size() - 1, region.size()); k > held; --k) {
      if (region.substr(region.size() - k) == m.substr(0, k)) {
        held = k;
        break;
      }
    }
  }
  return std::string(Strip(region.substr(0, region.size() - held)));
}

std::string StreamableContent(ToolFamily family, std::string_view text) {
  if (LStrip(text).starts_with("<think>")) {  // content starts once the reasoning has closed
    std::size_t close = text.find("</think>");
    if (close == std::string_view::npos || close > FirstCallMarker(family, text)) return std::string();
    std::string_view rest = LStrip(text.substr(close + 8));
    return std::string(rest.substr(0, StreamableContentBytes(family, rest)));
  }
  return std::string(text.substr(0, StreamableContentBytes(family, text)));
}

std::size_t StreamableContentBytes(ToolFamily family, std::string_view text) {
  if (text.find("<think>") != std::string_view::npos || text.find("</think>") != std::string_view::npos) {
    return 0;  // reasoning: content is settled when the run ends
  }
  if (LeadingJsonCalls(family)) {
    std::string_view s = LStrip(text);
    if (s.empty() || s.front() == '{' || s.front() == '[') return 0;
  }
  if (family == ToolFamily::kFunctionary) return 0;  // the recipient line decides
  std::size_t limit = text.size();
  std::vector<std::string_view> markers = Markers(family);
  for (std::string_view m : markers) limit = std::min(limit, text.find(m));
  std::size_t held = 0;  // a partial marker at the end
  for (std::string_view m : markers) {
    for (std::size_t k = std::min(m.size() - 1, limit); k > held; --k) {
      if (text.substr(limit - k, k) == m.substr(0, k)) {
        held = k;
        break;
      }
    }
  }
  limit -= held;
  while (limit > 0 && IsSpace(text[limit - 1])) --limit;
  return limit;
}

std::string ToolCallConstraintSpec(ToolFamily family, const ToolRequest& request) {
  if (!request.Active() || request.choice == ToolChoiceMode::kNone) return std::string();
  bool required = request.choice == ToolChoiceMode::kRequired || request.choice == ToolChoiceMode::kNamed;
  Json forms = Json::array();
  FormShape shape;
  bool parallel = request.parallel_tool_calls;
  for (const ToolDefinition* t : request.Allowed()) {
    shape = ShapeFor(family, t->name);
    forms.push_back(
        {{"prefix", shape.prefix}, {"next_prefix", shape.next_prefix}, {"schema", t->parameters}});
    parallel = parallel && !shape.next_prefix.empty();
  }
  return DumpJson({{"type", "tool_call"},
                   {"forms", std::move(forms)},
                   {"suffix", shape.suffix},
                   {"close", shape.close},
                   {"max_calls", parallel ? kMaxParallelCalls : 1},
                   {"marker", shape.marker},
                   {"auto", !required}});
}

std::string CallIdFor(ToolFamily family, std::string_view node_hex, std::size_t index) {
  if (family == ToolFamily::kMistral) {
    std::string id(node_hex.substr(0, 8));
    id.push_back(static_cast<char>('0' + index % 10));
    return id;
  }
  return "call_" + std::string(node_hex.substr(0, 24)) + "_" + std::to_string(index);
}

std::string GenericToolsSystemText(const ToolRequest& request) {
  std::string text =
      "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
      "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
  for (const OrderedJson& t : request.TemplateTools()) {
    text += "\n" + t.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
  }
  text +=
      "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
      "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
      "\"arguments\": <args-json-object>}\n</tool_call>";
  return text;
}

}  // namespace llmsync::api
