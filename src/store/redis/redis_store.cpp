// RedisStore: opening, record encoding, sessions and nodes.
#include <charconv>
#include <cstring>
#include <limits>
#include <utility>

#include "store/redis/redis_store_impl.h"

namespace llmsync::store {

Status ParseRedisUrl(std::string_view url, RedisStoreOptions* options) {
  constexpr std::string_view kScheme = "redis://";
  auto bad = [&] {
    return Status::InvalidArgument("'" + std::string(url) + "' is not a redis://HOST[:PORT][/DB] address");
  };
  if (url.substr(0, kScheme.size()) != kScheme) return bad();
  std::string_view rest = url.substr(kScheme.size());
  std::string_view db;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad();
  options->host = std::string(rest);
  auto number = [](std::string_view s, int max, int* out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size() && *out >= 0 && *out <= max;
  };
  options->port = 6379;
  options->db = 0;
  if (!port.empty() && (!number(port, 65535, &options->port) || options->port == 0)) return bad();
  if (!db.empty() && !number(db, 1 << 20, &options->db)) return bad();
  return Status::Ok();
}

Result<std::unique_ptr<Store>> OpenRedisStore(const RedisStoreOptions& options) {
  RedisStoreOptions opts = options;
  if (opts.env == nullptr) opts.env = Env::Default();
  redis::ClientOptions co;
  co.host = opts.host;
  co.port = opts.port;
  co.db = opts.db;
  co.connect_timeout_ms = opts.connect_timeout_ms;
  co.command_timeout_ms = opts.command_timeout_ms;
  co.reconnect_budget_ms = opts.reconnect_budget_ms;
  auto client = std::make_unique<redis::RedisClient>(co);
  LLMSYNC_ASSIGN_OR_RETURN(redis::Reply pong, client->Command({"PING"}, true));
  (void)pong;
  return std::unique_ptr<Store>(std::make_unique<redis::RedisStore>(std::move(opts), std::move(client)));
}

namespace redis {

namespace {

Status Corrupt(const std::string& what) { return Status::DataLoss("redis holds a corrupt " + what); }

std::string Num(std::uint64_t v) { return std::to_string(v); }
std::string Num(std::int64_t v) { return std::to_string(v); }

std::size_t ClampLimit(std::size_t limit) { return std::min<std::size_t>(limit, 1u << 30); }

Status HeadConflict(const Status& s, const std::optional<Id>& expected, Id* conflict_head) {
  if (s.Code() != StatusCode::kConflict || s.Message().rfind(kHeadConflictPrefix, 0) != 0) return s;
  Result<Id> head = ParseIdArg(s.Message().substr(kHeadConflictPrefix.size()));
  if (!head.IsOk()) return head.GetStatus();
  if (conflict_head != nullptr) *conflict_head = *head;
  Id want = expected.value_or(Id());
  return Status::Conflict("expect_head " + (want.IsZero() ? std::string("(empty)") : want.ToHex()) +
                          " is stale: the head is " +
                          (head->IsZero() ? std::string("(empty)") : head->ToHex()));
}

// Parses the outcome string "head:head_seq;nid:seq:created;..." of the append script.
Result<AppendOutcome> ParseOutcome(const std::string& s, bool replayed) {
  AppendOutcome o;
  o.replayed = replayed;
  std::size_t at = 0;
  bool first = true;
  while (at <= s.size()) {
    std::size_t end = s.find(';', at);
    if (end == std::string::npos) end = s.size();
    std::string part = s.substr(at, end - at);
    std::size_t c1 = part.find(':');
    if (c1 == std::string::npos) return Corrupt("append outcome");
    LLMSYNC_ASSIGN_OR_RETURN(Id id, ParseIdArg(part.substr(0, c1)));
    if (first) {
      o.head = id;
      LLMSYNC_ASSIGN_OR_RETURN(o.head_seq, ParseU64(part.substr(c1 + 1)));
    } else {
      std::size_t c2 = part.find(':', c1 + 1);
      if (c2 == std::string::npos) return Corrupt("append outcome");
      LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t seq, ParseU64(part.substr(c1 + 1, c2 - c1 - 1)));
      o.ids.push_back(id);
      o.seqs.push_back(seq);
      o.created.push_back(part.substr(c2 + 1) == "1");
    }
    first = false;
    at = end + 1;
  }
  return o;
}

Status CheckChain(const AppendBatch& batch) {
  if (batch.nodes.empty()) return Status::InvalidArgument("an append needs at least one node");
  Id expected_parent = batch.parent;
  for (const NodeRecord& n : batch.nodes) {
    if (n.parent != expected_parent) return Status::InvalidArgument("the appended nodes do not form a chain");
    if (n.id.IsZero()) return Status::InvalidArgument("a node id is zero");
    expected_parent = n.id;
  }
  return Status::Ok();
}

}  // namespace

// ---- Encoding

std::string IdArg(const Id& id) { return id.IsZero() ? std::string() : id.ToHex(); }

Result<Id> ParseIdArg(const std::string& s) {
  if (s.empty()) return Id();
  Result<Id> id = Id::FromHex(s);
  if (!id.IsOk()) return Corrupt("id '" + s + "'");
  return id;
}

Result<std::uint64_t> ParseU64(const std::string& s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return Corrupt("number '" + s + "'");
  return v;
}

Result<std::int64_t> ParseI64(const std::string& s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return Corrupt("number '" + s + "'");
  return v;
}

std::string EncodeTokens(const TokenIds& tokens) {
  std::string out(tokens.size() * 4, '\0');
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    auto v = static_cast<std::uint32_t>(tokens[i]);
    for (int b = 0; b < 4; ++b) out[i * 4 + b] = static_cast<char>((v >> (8 * b)) & 0xff);
  }
  return out;
}

Result<TokenIds> DecodeTokens(const std::string& s) {
  if (s.size() % 4 != 0) return Corrupt("token list");
  TokenIds out(s.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t v = 0;
    for (int b = 0; b < 4; ++b)
      v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(s[i * 4 + b])) << (8 * b);
    out[i] = static_cast<std::int32_t>(v);
  }
  return out;
}

Result<NodeRecord> ParseNode(const std::vector<Reply>& e, std::size_t at) {
  if (e.size() < at + 1 + kNodeFieldCount) return Corrupt("node row");
  auto f = [&](int i) -> const std::string& { return e[at + 1 + i].str; };
  NodeRecord n;
  LLMSYNC_ASSIGN_OR_RETURN(n.id, ParseIdArg(e[at].str));
  LLMSYNC_ASSIGN_OR_RETURN(n.parent, ParseIdArg(f(0)));
  LLMSYNC_ASSIGN_OR_RETURN(n.seq, ParseU64(f(1)));
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t depth, ParseU64(f(2)));
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t kind, ParseU64(f(3)));
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t token_count, ParseU64(f(8)));
  if (depth < 1 || depth > std::numeric_limits<std::uint32_t>::max() || kind > 255 ||
      token_count > std::numeric_limits<std::uint32_t>::max()) {
    return Status::DataLoss("node " + n.id.ToHex() + " has an out-of-range depth, kind or token count");
  }
  n.depth = static_cast<std::uint32_t>(depth);
  n.kind = static_cast<std::uint8_t>(kind);
  n.hidden = f(4) == "1";
  n.purged = f(5) == "1";
  n.text = f(6);
  LLMSYNC_ASSIGN_OR_RETURN(n.tokens, DecodeTokens(f(7)));
  n.token_count = static_cast<std::uint32_t>(token_count);
  n.tool_name = f(9);
  n.call_id = f(10);
  n.sealed = f(11);
  LLMSYNC_ASSIGN_OR_RETURN(n.created_at_ms, ParseI64(f(12)));
  return n;
}

Result<SessionRecord> ParseSession(const std::vector<Reply>& e, std::size_t at) {
  if (e.size() < at + kSessionFieldCount || e[at + 1].type != Reply::Type::kString)
    return Corrupt("session row");
  SessionRecord s;
  LLMSYNC_ASSIGN_OR_RETURN(s.id, ParseIdArg(e[at].str));
  s.tenant = e[at + 1].str;
  LLMSYNC_ASSIGN_OR_RETURN(s.model, ParseIdArg(e[at + 2].str));
  LLMSYNC_ASSIGN_OR_RETURN(s.created_at_ms, ParseI64(e[at + 3].str));
  LLMSYNC_ASSIGN_OR_RETURN(s.head, ParseIdArg(e[at + 4].str));
  LLMSYNC_ASSIGN_OR_RETURN(s.head_seq, ParseU64(e[at + 5].str));
  LLMSYNC_ASSIGN_OR_RETURN(s.last_seq, ParseU64(e[at + 6].str));
  if (e[at + 7].type == Reply::Type::kString) s.metadata = e[at + 7].str;  // nil: never set
  return s;
}

// ---- RedisStore: plumbing

Result<Reply> RedisStore::Write(Script script, const std::vector<std::string>& args) {
  LLMSYNC_RETURN_IF_ERROR(CheckNotWriter());
  return client_->Eval(script, args, /*idempotent=*/false);
}

Result<Reply> RedisStore::Read(Script script, const std::vector<std::string>& args) {
  return client_->Eval(script, args, /*idempotent=*/true);
}

Result<std::uint64_t> RedisStore::Count(Script script, const std::vector<std::string>& args) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Write(script, args));
  if (r.type != Reply::Type::kInteger || r.integer < 0) return Corrupt("count reply");
  return static_cast<std::uint64_t>(r.integer);
}

// ---- Sessions

Status RedisStore::CreateSession(const SessionRecord& session) {
  return Write(Script::kCreateSession,
               {session.id.ToHex(), session.tenant, IdArg(session.model), Num(session.created_at_ms)})
      .GetStatus();
}

Result<SessionRecord> RedisStore::GetSession(std::string_view tenant, const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(SessionRecord s, AdminFindSession(session));
  if (s.tenant != tenant) return Status::NotFound("session " + session.ToHex() + " not found");
  return s;
}

Result<SessionRecord> RedisStore::AdminFindSession(const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(
      Reply r, client_->Command({"HMGET", "llmsync:session:" + session.ToHex(), "tenant", "model", "created",
                                 "head", "head_seq", "last_seq", "metadata"},
                                true));
  if (r.elements.empty() || r.elements[0].type == Reply::Type::kNil)
    return Status::NotFound("session " + session.ToHex() + " not found");
  Reply id;
  id.type = Reply::Type::kString;
  id.str = session.ToHex();
  r.elements.insert(r.elements.begin(), std::move(id));
  return ParseSession(r.elements, 0);
}

Result<SessionRecord> RedisStore::SetSessionMetadata(std::string_view tenant, const Id& session,
                                                     std::string_view metadata) {
  if (metadata.size() > kMaxSessionMetadataBytes) {
    return Status::InvalidArgument("session metadata of " + std::to_string(metadata.size()) +
                                   " bytes exceeds the limit of " + std::to_string(kMaxSessionMetadataBytes));
  }
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Write(Script::kSetSessionMetadata,
                                          {session.ToHex(), std::string(tenant), std::string(metadata)}));
  return ParseSession(r.elements, 0);
}

Result<std::vector<SessionRecord>> RedisStore::ListSessions(std::string_view tenant, std::size_t limit) {
  std::vector<SessionRecord> out;
  if (limit == 0) return out;
  LLMSYNC_ASSIGN_OR_RETURN(Reply r,
                           Read(Script::kListSessions, {std::string(tenant), Num(ClampLimit(limit))}));
  for (std::size_t at = 0; at + kSessionFieldCount <= r.elements.size(); at += kSessionFieldCount) {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRecord s, ParseSession(r.elements, at));
    out.push_back(std::move(s));
  }
  return out;
}

Status RedisStore::DeleteSession(std::string_view tenant, const Id& session) {
  return Write(Script::kDeleteSession, {session.ToHex(), std::string(tenant)}).GetStatus();
}

// ---- Nodes

Result<AppendOutcome> RedisStore::Append(const AppendBatch& batch, Id* conflict_head) {
  LLMSYNC_RETURN_IF_ERROR(CheckChain(batch));
  std::vector<std::string> args = {batch.session.ToHex(),
                                   batch.tenant,
                                   IdArg(batch.parent),
                                   batch.expect_head ? "1" : "0",
                                   batch.expect_head ? IdArg(*batch.expect_head) : "",
                                   batch.idempotency_key,
                                   batch.request_digest.ToHex(),
                                   batch.move_head ? "1" : "0",
                                   Num(env_->UnixMillis()),
                                   Num(static_cast<std::uint64_t>(batch.nodes.size()))};
  for (const NodeRecord& n : batch.nodes) {
    args.insert(args.end(), {n.id.ToHex(), std::to_string(n.kind), n.hidden ? "1" : "0", n.text,
                             EncodeTokens(n.tokens), Num(static_cast<std::uint64_t>(n.tokens.size())),
                             n.tool_name, n.call_id, n.sealed, Num(n.created_at_ms)});
  }
  Result<Reply> r = Write(Script::kAppend, args);
  if (!r.IsOk()) return HeadConflict(r.GetStatus(), batch.expect_head, conflict_head);
  if (r->elements.size() != 2) return Corrupt("append reply");
  return ParseOutcome(r->elements[1].str, r->elements[0].str == "replay");
}

Result<SessionRecord> RedisStore::SetHead(std::string_view tenant, const Id& session, const Id& node,
                                          const std::optional<Id>& expect_head, Id* conflict_head) {
  Result<Reply> r =
      Write(Script::kSetHead, {session.ToHex(), std::string(tenant), IdArg(node), expect_head ? "1" : "0",
                               expect_head ? IdArg(*expect_head) : ""});
  if (!r.IsOk()) return HeadConflict(r.GetStatus(), expect_head, conflict_head);
  return ParseSession(r->elements, 0);
}

Result<NodeRecord> RedisStore::GetNode(std::string_view tenant, const Id& session, const Id& node) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r,
                           Read(Script::kGetNode, {session.ToHex(), std::string(tenant), node.ToHex()}));
  return ParseNode(r.elements, 0);
}

Result<std::vector<NodeRecord>> RedisStore::GetPath(std::string_view tenant, const Id& session,
                                                    const Id& node) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r,
                           Read(Script::kGetPath, {session.ToHex(), std::string(tenant), node.ToHex()}));
  std::vector<NodeRecord> path;
  for (std::size_t at = 0; at + kNodeFieldCount < r.elements.size(); at += kNodeFieldCount + 1) {
    LLMSYNC_ASSIGN_OR_RETURN(NodeRecord n, ParseNode(r.elements, at));
    path.push_back(std::move(n));
  }
  return path;
}

Result<SessionChanges> RedisStore::ChangesSince(std::string_view tenant, const Id& session,
                                                std::uint64_t since_seq, std::size_t limit) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, Read(Script::kChangesSince, {session.ToHex(), std::string(tenant),
                                                                 Num(since_seq), Num(ClampLimit(limit))}));
  SessionChanges changes;
  LLMSYNC_ASSIGN_OR_RETURN(changes.session, ParseSession(r.elements, 0));
  if (r.elements.size() <= kSessionFieldCount) return Corrupt("changes reply");
  changes.more = r.elements[kSessionFieldCount].str == "1";
  for (std::size_t at = kSessionFieldCount + 1; at + kNodeFieldCount < r.elements.size();
       at += kNodeFieldCount + 1) {
    LLMSYNC_ASSIGN_OR_RETURN(NodeRecord n, ParseNode(r.elements, at));
    changes.nodes.push_back(std::move(n));
  }
  return changes;
}

Result<std::vector<BranchTip>> RedisStore::ListBranchTips(std::string_view tenant, const Id& session,
                                                          std::size_t limit) {
  std::vector<BranchTip> tips;
  LLMSYNC_ASSIGN_OR_RETURN(Reply r,
                           Read(Script::kBranchTips, {session.ToHex(), std::string(tenant),
                                                      Num(std::max<std::size_t>(1, ClampLimit(limit)))}));
  if (limit == 0) return tips;
  for (std::size_t at = 0; at + 4 <= r.elements.size(); at += 4) {
    BranchTip tip;
    LLMSYNC_ASSIGN_OR_RETURN(tip.id, ParseIdArg(r.elements[at].str));
    LLMSYNC_ASSIGN_OR_RETURN(tip.seq, ParseU64(r.elements[at + 1].str));
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t depth, ParseU64(r.elements[at + 2].str));
    tip.depth = static_cast<std::uint32_t>(depth);
    LLMSYNC_ASSIGN_OR_RETURN(tip.created_at_ms, ParseI64(r.elements[at + 3].str));
    tips.push_back(tip);
  }
  return tips;
}

Result<std::uint64_t> RedisStore::PurgeHidden(const std::optional<std::string>& tenant,
                                              std::int64_t created_before_ms) {
  return Count(Script::kPurgeHidden, {tenant ? "1" : "0", tenant.value_or(""), Num(created_before_ms)});
}

Status RedisStore::RestoreContent(std::string_view tenant, const Id& session, const Id& node,
                                  std::string_view text, const TokenIds& tokens, std::string_view sealed) {
  return Write(Script::kRestoreContent,
               {session.ToHex(), std::string(tenant), node.ToHex(), std::string(text), EncodeTokens(tokens),
                Num(static_cast<std::uint64_t>(tokens.size())), std::string(sealed)})
      .GetStatus();
}

Status RedisStore::LoadSession(const SessionRecord& session, const std::vector<NodeRecord>& nodes) {
  std::vector<std::string> args = {session.id.ToHex(),    session.tenant,
                                   IdArg(session.model),  Num(session.created_at_ms),
                                   IdArg(session.head),   Num(session.head_seq),
                                   Num(session.last_seq), Num(static_cast<std::uint64_t>(nodes.size()))};
  for (const NodeRecord& n : nodes) {
    if (n.id.IsZero() || n.seq == 0 || n.seq > session.last_seq)
      return Status::InvalidArgument("node " + n.id.ToHex() + " has a zero id or an invalid seq");
    std::uint64_t token_count = n.purged ? n.token_count : n.tokens.size();
    args.insert(args.end(), {n.id.ToHex(), IdArg(n.parent), Num(n.seq),
                             Num(static_cast<std::uint64_t>(n.depth)), std::to_string(n.kind),
                             n.hidden ? "1" : "0", n.purged ? "1" : "0", n.text, EncodeTokens(n.tokens),
                             Num(token_count), n.tool_name, n.call_id, n.sealed, Num(n.created_at_ms)});
  }
  return Write(Script::kLoadSession, args).GetStatus();
}

Result<std::uint64_t> RedisStore::PruneIdempotency(std::int64_t created_before_ms) {
  return Count(Script::kPruneIdempotency, {Num(created_before_ms)});
}

}  // namespace redis
}  // namespace llmsync::store
