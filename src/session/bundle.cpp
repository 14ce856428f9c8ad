// Export, verification, transcript and import of bundles (the JSON codec is bundle_codec.cpp).
#include <algorithm>
#include <unordered_map>
#include <utility>

#include "session/bundle.h"

namespace llmsync::session {

namespace {

constexpr std::size_t kExportPage = 4096;

Status BadLine(std::size_t index, const std::string& what) {
  // Line 1 is the header, so node i is on line i + 2.
  return Status::DataLoss("bundle line " + std::to_string(index + 2) + ": " + what);
}

std::string Heading(const Node& n) {
  std::string h = "## " + std::string(NodeKindName(n.content.kind));
  if (n.IsHidden()) return h + " (hidden, " + std::to_string(n.token_count) + " tokens)";
  // A summary node stands in for the turns a compaction folded (they stay on the original branch).
  if (n.content.kind == NodeKind::kSummary) h += " (stands in for earlier turns, folded by compaction)";
  if (!n.content.tool_name.empty()) h += " `" + n.content.tool_name + "`";
  if (!n.content.call_id.empty()) h += " (call " + n.content.call_id + ")";
  return h;
}

}  // namespace

Status VerifyBundle(const Bundle& bundle, const SessionLimits& limits) {
  const BundleHeader& h = bundle.header;
  LLMSYNC_RETURN_IF_ERROR(ValidateTenant(h.tenant, limits).WithContext("bundle header"));
  std::unordered_map<Id, std::size_t> index_of;
  index_of.reserve(bundle.nodes.size());
  std::uint64_t last_seq = 0;
  for (std::size_t i = 0; i < bundle.nodes.size(); ++i) {
    const Node& n = bundle.nodes[i];
    if (n.seq <= last_seq) return BadLine(i, "seqs must increase");
    last_seq = n.seq;
    if (!n.parent.IsZero() && index_of.find(n.parent) == index_of.end()) {
      return BadLine(i, "parent " + n.parent.ToHex() + " does not precede node " + n.id.ToHex());
    }
    if (n.purged || n.withheld) {
      return Status::InvalidArgument(
          "bundle line " + std::to_string(i + 2) + ": node " + n.id.ToHex() + " is a " +
          (n.purged ? "purged" : "withheld") +
          " hidden node whose content cannot be verified (the bundle has no sealed blob for it that this "
          "server can open)");
    }
    Status valid = ValidateDraft(n.content, i, limits);
    if (!valid.IsOk())
      return Status::InvalidArgument("bundle line " + std::to_string(i + 2) + ": " + valid.Message());
    if (NodeIdFor(h.tenant, n.parent, n.content) != n.id) {
      return BadLine(i, "node id " + n.id.ToHex() +
                            " does not match its content (the bundle was modified or corrupted)");
    }
    if (!index_of.emplace(n.id, i).second) return BadLine(i, "node " + n.id.ToHex() + " appears twice");
  }
  if (!h.head.IsZero() && index_of.find(h.head) == index_of.end()) {
    return Status::DataLoss("the bundle's head " + h.head.ToHex() + " is not one of its nodes");
  }
  return Status::Ok();
}

std::string RenderTranscript(const SessionInfo& session, const std::vector<Node>& path) {
  std::string md = "# llmsync session " + session.id.ToHex() + "\n\n";
  md += "- tenant: `" + session.tenant + "`\n";
  md += "- model: `" + session.model.ToHex() + "`\n";
  md += "- head: `" + (session.head.IsZero() ? std::string("(empty)") : session.head.ToHex()) + "`\n";
  for (const Node& n : path) {
    md += '\n';
    md += Heading(n);
    md += "\n\n";
    if (n.IsHidden()) {
      md += "_(hidden content)_\n";
    } else {
      md += n.content.text;
      if (n.content.text.empty() || n.content.text.back() != '\n') md += "\n";
    }
  }
  return md;
}

Result<std::string> ExportTranscript(SessionService& sessions, std::string_view tenant, const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(SessionInfo info, sessions.GetSession(tenant, session));
  std::vector<Node> path;
  if (!info.head.IsZero()) {
    LLMSYNC_ASSIGN_OR_RETURN(path, sessions.Path(tenant, session, info.head));
  }
  return RenderTranscript(info, path);
}

Result<std::string> ExportSession(SessionService& sessions, std::string_view tenant, const Id& session,
                                  HiddenContent hidden) {
  Bundle bundle;
  SessionInfo info;
  std::uint64_t since = 0;
  // Page through the log. Nodes are append-only, so pages read at different moments still form
  // one consistent prefix of it; the head comes from the last page.
  while (true) {
    LLMSYNC_ASSIGN_OR_RETURN(Diff page, sessions.DiffSince(tenant, session, since, kExportPage));
    info = page.session;
    for (Node& n : page.nodes) {
      since = n.seq;
      if (hidden == HiddenContent::kWithhold && n.IsHidden() && !n.purged) {
        n.content.text.clear();
        n.content.tokens.clear();
        n.content.tool_name.clear();
        n.content.call_id.clear();
        n.withheld = true;
      }
      bundle.nodes.push_back(std::move(n));
    }
    if (!page.more) break;
  }
  bundle.header.tenant = info.tenant;
  bundle.header.session = info.id;
  bundle.header.model = info.model;
  bundle.header.head = info.head;
  bundle.header.node_count = bundle.nodes.size();
  bundle.header.exported_at_ms = sessions.GetEnv()->UnixMillis();
  if (!info.head.IsZero()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::vector<Node> path, sessions.Path(tenant, session, info.head));
    bundle.transcript = RenderTranscript(info, path);
  } else {
    bundle.transcript = RenderTranscript(info, {});
  }
  return EncodeBundle(bundle);
}

Result<ImportResult> ImportSession(SessionService& sessions, std::string_view text,
                                   const ImportOptions& options) {
  const SessionLimits& limits = sessions.Options().limits;
  LLMSYNC_ASSIGN_OR_RETURN(Bundle bundle, ParseBundle(text));
  for (Node& n : bundle.nodes) {
    // Content left out of the bundle comes back from its sealed blob; VerifyBundle then checks
    // that it hashes to the node's id.
    if (!(n.purged || n.withheld) || n.sealed.empty()) continue;
    auto content = sessions.OpenSealedContent(n.sealed);
    if (!content.IsOk()) return content.GetStatus().WithContext("node " + n.id.ToHex());
    n.content = std::move(content).Value();
    n.purged = false;
    n.withheld = false;
  }
  LLMSYNC_RETURN_IF_ERROR(VerifyBundle(bundle, limits));
  const BundleHeader& h = bundle.header;
  const std::string tenant = options.tenant.value_or(h.tenant);
  LLMSYNC_RETURN_IF_ERROR(ValidateTenant(tenant, limits));
  const Id model = options.model.value_or(h.model);
  const bool retokenize = model != h.model;
  if (retokenize && !options.retokenize) {
    return Status::InvalidArgument(
        "the bundle was made for model " + h.model.ToHex() +
        "; importing it for another model needs a tokenizer to re-derive its tokens");
  }

  ImportResult result;
  result.retokenized = retokenize;
  result.id_map.reserve(bundle.nodes.size());
  std::unordered_map<Id, std::pair<Id, std::uint32_t>> new_of;  // bundle id -> (new id, depth)
  std::unordered_map<Id, bool> inserted;
  std::vector<store::NodeRecord> records;
  records.reserve(bundle.nodes.size());
  for (std::size_t i = 0; i < bundle.nodes.size(); ++i) {
    const Node& n = bundle.nodes[i];
    NodeContent content = n.content;
    if (retokenize) {
      Result<std::vector<TokenId>> tokens = options.retokenize(content.kind, content.text);
      if (!tokens.IsOk()) return tokens.GetStatus().WithContext("re-tokenize node " + n.id.ToHex());
      content.tokens = std::move(tokens).Value();
      LLMSYNC_RETURN_IF_ERROR(ValidateDraft(content, i, limits).WithContext("re-tokenized"));
    }
    Id parent;
    std::uint32_t depth = 1;
    if (!n.parent.IsZero()) {
      const auto& p = new_of.at(n.parent);  // VerifyBundle guarantees the parent precedes
      parent = p.first;
      depth = p.second + 1;
    }
    Id id = NodeIdFor(tenant, parent, content);
    new_of[n.id] = {id, depth};
    result.id_map.emplace_back(n.id, id);
    // Nodes that differed only in tokens can coincide once re-tokenized: keep the first.
    if (!inserted.emplace(id, true).second) continue;
    store::NodeRecord r;
    r.id = id;
    r.parent = parent;
    r.seq = records.size() + 1;
    r.depth = depth;
    r.kind = static_cast<std::uint8_t>(content.kind);
    r.hidden = content.visibility == Visibility::kHidden;
    r.sealed = sessions.SealIfHidden(content);
    r.text = std::move(content.text);
    r.tokens = std::move(content.tokens);
    r.token_count = static_cast<std::uint32_t>(r.tokens.size());
    r.tool_name = std::move(content.tool_name);
    r.call_id = std::move(content.call_id);
    r.created_at_ms = n.created_at_ms;
    records.push_back(std::move(r));
  }

  SessionInfo& s = result.session;
  s.id = Id::Random();
  s.tenant = tenant;
  s.model = model;
  s.created_at_ms = sessions.GetEnv()->UnixMillis();
  s.head = h.head.IsZero() ? Id() : new_of.at(h.head).first;
  s.last_seq = records.size();
  s.head_seq = s.last_seq;
  LLMSYNC_RETURN_IF_ERROR(sessions.GetStore()->LoadSession(s, records));
  return result;
}

}  // namespace llmsync::session
