// The JSON Lines codec of bundles: the only code in session/ that touches JSON. Parsing never
// throws: nlohmann's non-throwing parse is used and every field's type is checked before use.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "base/base64url.h"
#include "base/json_depth.h"
#include "session/bundle.h"

namespace llmsync::session {

namespace {

using Json = nlohmann::json;

constexpr std::string_view kHeaderType = "llmsync.bundle";

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json IdOrNull(const Id& id) { return id.IsZero() ? Json(nullptr) : Json(id.ToHex()); }

Status LineError(std::size_t line, const std::string& what) {
  return Status::InvalidArgument("bundle line " + std::to_string(line) + ": " + what);
}

// Field readers: each returns kInvalidArgument naming the line and field.
class Fields {
 public:
  Fields(const Json& object, std::size_t line) : object_(object), line_(line) {}
  std::size_t Line() const { return line_; }

  Result<std::string> String(const char* name, bool required = true) const {
    auto it = object_.find(name);
    if (it == object_.end() && !required) return std::string();
    if (it == object_.end() || !it->is_string()) return Bad(name, "a string");
    return it->get<std::string>();
  }
  Result<Id> IdField(const char* name, bool nullable) const {
    auto it = object_.find(name);
    if (nullable && (it == object_.end() || it->is_null())) return Id();
    if (it == object_.end() || !it->is_string()) return Bad(name, "an id");
    Result<Id> id = Id::FromHex(it->get_ref<const std::string&>());
    if (!id.IsOk()) return LineError(line_, std::string("field '") + name + "': " + id.GetStatus().Message());
    return id;
  }
  Result<std::int64_t> Int(const char* name) const {
    auto it = object_.find(name);
    if (it == object_.end() || !it->is_number_integer()) return Bad(name, "an integer");
    if (it->is_number_unsigned() && it->get<std::uint64_t>() > std::numeric_limits<std::int64_t>::max()) {
      return Bad(name, "an integer in range");
    }
    return it->get<std::int64_t>();
  }
  Result<std::uint64_t> Count(const char* name) const {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t v, Int(name));
    if (v < 0) return Bad(name, "a non-negative integer");
    return static_cast<std::uint64_t>(v);
  }
  bool Flag(const char* name) const {
    auto it = object_.find(name);
    return it != object_.end() && it->is_boolean() && it->get<bool>();
  }
  Result<std::vector<TokenId>> Tokens(const char* name) const {
    auto it = object_.find(name);
    if (it == object_.end() || !it->is_array()) return Bad(name, "an array of token ids");
    std::vector<TokenId> tokens;
    tokens.reserve(it->size());
    for (const Json& t : *it) {
      if (!t.is_number_integer()) return Bad(name, "an array of token ids");
      if (t.is_number_unsigned()
              ? t.get<std::uint64_t>() > std::numeric_limits<TokenId>::max()
              : (t.get<std::int64_t>() < 0 || t.get<std::int64_t>() > std::numeric_limits<TokenId>::max())) {
        return Bad(name, "token ids in range");
      }
      tokens.push_back(static_cast<TokenId>(t.get<std::int64_t>()));
    }
    return tokens;
  }

 private:
  Status Bad(const char* name, const char* expected) const {
    return LineError(line_, std::string("field '") + name + "' must be " + expected);
  }

  const Json& object_;
  std::size_t line_;
};

Result<BundleHeader> ParseHeader(const Fields& f, std::size_t line) {
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t version, f.Int("version"));
  if (version != kBundleVersion) {
    return LineError(line, "bundle version " + std::to_string(version) + " is not supported (expected " +
                               std::to_string(kBundleVersion) + ")");
  }
  BundleHeader h;
  LLMSYNC_ASSIGN_OR_RETURN(h.tenant, f.String("tenant"));
  LLMSYNC_ASSIGN_OR_RETURN(h.session, f.IdField("session", false));
  LLMSYNC_ASSIGN_OR_RETURN(h.model, f.IdField("model", false));
  LLMSYNC_ASSIGN_OR_RETURN(h.head, f.IdField("head", true));
  LLMSYNC_ASSIGN_OR_RETURN(h.node_count, f.Count("nodes"));
  LLMSYNC_ASSIGN_OR_RETURN(h.exported_at_ms, f.Int("exported_at_ms"));
  return h;
}

Result<Node> ParseNode(const Fields& f) {
  Node n;
  LLMSYNC_ASSIGN_OR_RETURN(n.id, f.IdField("id", false));
  LLMSYNC_ASSIGN_OR_RETURN(n.parent, f.IdField("parent", true));
  LLMSYNC_ASSIGN_OR_RETURN(n.seq, f.Count("seq"));
  LLMSYNC_ASSIGN_OR_RETURN(std::string kind, f.String("kind"));
  LLMSYNC_ASSIGN_OR_RETURN(n.content.kind, ParseNodeKind(kind));
  LLMSYNC_ASSIGN_OR_RETURN(std::string visibility, f.String("visibility"));
  LLMSYNC_ASSIGN_OR_RETURN(n.content.visibility, ParseVisibility(visibility));
  LLMSYNC_ASSIGN_OR_RETURN(n.content.tool_name, f.String("tool_name", false));
  LLMSYNC_ASSIGN_OR_RETURN(n.content.call_id, f.String("call_id", false));
  LLMSYNC_ASSIGN_OR_RETURN(n.created_at_ms, f.Int("created_at_ms"));
  LLMSYNC_ASSIGN_OR_RETURN(std::string sealed, f.String("sealed", false));
  if (!sealed.empty()) {
    auto blob = Base64UrlDecode(sealed);
    if (!blob.IsOk()) return LineError(f.Line(), "field 'sealed': " + blob.GetStatus().Message());
    n.sealed = std::move(blob).Value();
  }
  n.purged = f.Flag("purged");
  n.withheld = f.Flag("withheld");
  if (n.purged || n.withheld) {
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t count, f.Count("token_count"));
    n.token_count = static_cast<std::uint32_t>(std::min<std::uint64_t>(count, UINT32_MAX));
    return n;
  }
  LLMSYNC_ASSIGN_OR_RETURN(n.content.text, f.String("text"));
  LLMSYNC_ASSIGN_OR_RETURN(n.content.tokens, f.Tokens("tokens"));
  n.token_count = static_cast<std::uint32_t>(n.content.tokens.size());
  return n;
}

}  // namespace

std::string EncodeBundle(const Bundle& bundle) {
  const BundleHeader& h = bundle.header;
  std::string out = Dump(Json{{"type", kHeaderType},
                              {"version", kBundleVersion},
                              {"tenant", h.tenant},
                              {"session", h.session.ToHex()},
                              {"model", h.model.ToHex()},
                              {"head", IdOrNull(h.head)},
                              {"nodes", bundle.nodes.size()},
                              {"exported_at_ms", h.exported_at_ms}});
  out += '\n';
  for (const Node& n : bundle.nodes) {
    Json j{{"type", "node"},
           {"id", n.id.ToHex()},
           {"parent", IdOrNull(n.parent)},
           {"seq", n.seq},
           {"kind", NodeKindName(n.content.kind)},
           {"visibility", VisibilityName(n.content.visibility)},
           {"created_at_ms", n.created_at_ms}};
    if (!n.content.tool_name.empty()) j["tool_name"] = n.content.tool_name;
    if (!n.content.call_id.empty()) j["call_id"] = n.content.call_id;
    if (!n.sealed.empty()) j["sealed"] = Base64UrlEncode(n.sealed);
    if (n.purged || n.withheld) {
      j[n.purged ? "purged" : "withheld"] = true;
      j["token_count"] = n.token_count;
    } else {
      j["text"] = n.content.text;
      j["tokens"] = n.content.tokens;
    }
    out += Dump(j);
    out += '\n';
  }
  out += Dump(Json{{"type", "transcript"}, {"format", "markdown"}, {"text", bundle.transcript}});
  out += '\n';
  return out;
}

Result<Bundle> ParseBundle(std::string_view text) {
  Bundle bundle;
  bool have_header = false;
  bool have_transcript = false;
  std::size_t line_no = 0;
  while (!text.empty()) {
    std::size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (have_transcript) return LineError(line_no, "nothing may follow the transcript line");
    if (JsonNestingDepth(line, kMaxJsonDepth) > kMaxJsonDepth)
      return LineError(line_no, "nests JSON deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return LineError(line_no, "not a JSON object");
    Fields f(j, line_no);
    LLMSYNC_ASSIGN_OR_RETURN(std::string type, f.String("type"));
    if (!have_header) {
      if (type != kHeaderType)
        return LineError(line_no, "not an llmsync bundle (the first line must be its header)");
      LLMSYNC_ASSIGN_OR_RETURN(bundle.header, ParseHeader(f, line_no));
      have_header = true;
    } else if (type == "node") {
      if (bundle.nodes.size() >= bundle.header.node_count) {
        return Status::DataLoss("bundle line " + std::to_string(line_no) + ": more nodes than the header's " +
                                std::to_string(bundle.header.node_count));
      }
      LLMSYNC_ASSIGN_OR_RETURN(Node n, ParseNode(f));
      bundle.nodes.push_back(std::move(n));
    } else if (type == "transcript") {
      LLMSYNC_ASSIGN_OR_RETURN(bundle.transcript, f.String("text"));
      have_transcript = true;
    } else {
      return LineError(line_no, "unknown line type '" + type + "'");
    }
  }
  if (!have_header) return Status::InvalidArgument("the bundle is empty");
  if (bundle.nodes.size() != bundle.header.node_count) {
    return Status::DataLoss("the bundle is truncated: its header announces " +
                            std::to_string(bundle.header.node_count) + " nodes but it holds " +
                            std::to_string(bundle.nodes.size()));
  }
  return bundle;
}

}  // namespace llmsync::session
