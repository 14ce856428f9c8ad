// SqliteStore: the node writes. Each runs as one operation of the writer's group commit, so it
// is atomic (its own savepoint) and durable when it returns.
#include <cstring>
#include <limits>
#include <utility>

#include "store/sqlite/sqlite_store_impl.h"

namespace llmsync::store {

namespace {

// ---- The recorded outcome of an idempotent append: a private binary encoding.

void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void PutId(std::string& out, const Id& id) {
  out.append(reinterpret_cast<const char*>(id.RawBytes().data()), Id::kBytes);
}

std::string EncodeOutcome(const AppendOutcome& o) {
  std::string out;
  PutU64(out, o.ids.size());
  for (std::size_t i = 0; i < o.ids.size(); ++i) {
    PutId(out, o.ids[i]);
    PutU64(out, o.seqs[i]);
    out.push_back(o.created[i] ? 1 : 0);
  }
  PutId(out, o.head);
  PutU64(out, o.head_seq);
  return out;
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U64(std::uint64_t* v) {
    if (in_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool U8(std::uint8_t* v) {
    if (in_.empty()) return false;
    *v = static_cast<std::uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool ReadId(Id* id) {
    if (in_.size() < Id::kBytes) return false;
    Id::Bytes bytes{};
    std::memcpy(bytes.data(), in_.data(), Id::kBytes);
    *id = Id(bytes);
    in_.remove_prefix(Id::kBytes);
    return true;
  }
  bool Done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

Result<AppendOutcome> DecodeOutcome(std::string_view in) {
  Reader r(in);
  AppendOutcome o;
  std::uint64_t n = 0;
  bool ok = r.U64(&n) && n <= in.size() / (Id::kBytes + 9);
  for (std::uint64_t i = 0; ok && i < n; ++i) {
    Id id;
    std::uint64_t seq = 0;
    std::uint8_t created = 0;
    ok = r.ReadId(&id) && r.U64(&seq) && r.U8(&created);
    o.ids.push_back(id);
    o.seqs.push_back(seq);
    o.created.push_back(created != 0);
  }
  ok = ok && r.ReadId(&o.head) && r.U64(&o.head_seq) && r.Done();
  if (!ok) return Status::DataLoss("a stored idempotency record is corrupt");
  o.replayed = true;
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

struct SessionRow {
  std::int64_t rowid = 0;
  Id head;
  std::uint64_t head_seq = 0;
  std::uint64_t last_seq = 0;
};

Result<SessionRow> LoadSessionRow(Connection& conn, std::string_view tenant, const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(
      Stmt stmt,
      conn.Prepare("SELECT rowid, head, head_seq, last_seq FROM sessions WHERE id = ? AND tenant = ?"));
  stmt.BindId(1, session).BindText(2, tenant);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return SessionNotFound(session);
  SessionRow s;
  s.rowid = stmt.ColumnInt(0);
  LLMSYNC_ASSIGN_OR_RETURN(s.head, stmt.ColumnId(1));
  s.head_seq = static_cast<std::uint64_t>(stmt.ColumnInt(2));
  s.last_seq = static_cast<std::uint64_t>(stmt.ColumnInt(3));
  return s;
}

Status StoreSessionRow(Connection& conn, const SessionRow& s) {
  LLMSYNC_ASSIGN_OR_RETURN(
      Stmt stmt, conn.Prepare("UPDATE sessions SET head = ?, head_seq = ?, last_seq = ? WHERE rowid = ?"));
  stmt.BindIdOrNull(1, s.head)
      .Bind(2, static_cast<std::int64_t>(s.head_seq))
      .Bind(3, static_cast<std::int64_t>(s.last_seq))
      .Bind(4, s.rowid);
  return stmt.Run();
}

// The (seq, depth) of a node of the session, or nullopt.
Result<std::optional<std::pair<std::uint64_t, std::uint32_t>>> FindNode(Connection& conn,
                                                                        std::int64_t session,
                                                                        const Id& node) {
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt,
                           conn.Prepare("SELECT seq, depth FROM nodes WHERE session = ? AND id = ?"));
  stmt.Bind(1, session).BindId(2, node);
  LLMSYNC_ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::pair<std::uint64_t, std::uint32_t>>();
  return std::optional(std::make_pair(static_cast<std::uint64_t>(stmt.ColumnInt(0)),
                                      static_cast<std::uint32_t>(stmt.ColumnInt(1))));
}

// Inserts a node. With `skip_existing`, a node whose id the session already has is left alone and
// the result is false (one statement instead of a lookup and an insert); otherwise it is an error.
Result<bool> InsertNode(Connection& conn, std::int64_t session, const NodeRecord& n, std::uint64_t seq,
                        std::uint32_t depth, bool purged, bool skip_existing) {
  static constexpr const char* kInsert =
      "INSERT INTO nodes (session, id, parent, seq, depth, kind, hidden, purged, text, tokens, token_count, "
      "tool_name, call_id, sealed, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
  static constexpr const char* kInsertIfAbsent =
      "INSERT INTO nodes (session, id, parent, seq, depth, kind, hidden, purged, text, tokens, token_count, "
      "tool_name, call_id, sealed, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
      "ON CONFLICT (session, id) DO NOTHING";
  LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare(skip_existing ? kInsertIfAbsent : kInsert));
  stmt.Bind(1, session)
      .BindId(2, n.id)
      .BindIdOrNull(3, n.parent)
      .Bind(4, static_cast<std::int64_t>(seq))
      .Bind(5, depth)
      .Bind(6, n.kind)
      .Bind(7, n.hidden ? 1 : 0)
      .Bind(8, purged ? 1 : 0)
      .BindText(9, n.text)
      .BindTokens(10, n.tokens)
      .Bind(11, purged ? n.token_count : static_cast<std::int64_t>(n.tokens.size()))
      .BindText(12, n.tool_name)
      .BindText(13, n.call_id);
  if (n.sealed.empty()) {
    stmt.BindNull(14);
  } else {
    stmt.BindBlob(14, n.sealed);
  }
  stmt.Bind(15, n.created_at_ms);
  LLMSYNC_RETURN_IF_ERROR(stmt.Run());
  return conn.Changes() > 0;
}

Status NodeNotInSession(const Id& node, const Id& session) {
  return Status::NotFound("node " + node.ToHex() + " is not in session " + session.ToHex());
}

Status HeadConflict(const Id& expected, const Id& head, Id* current_head) {
  *current_head = head;
  return Status::Conflict("expect_head " + (expected.IsZero() ? std::string("(empty)") : expected.ToHex()) +
                          " is stale: the head is " +
                          (head.IsZero() ? std::string("(empty)") : head.ToHex()));
}

Status AppendBody(Connection& conn, const AppendBatch& batch, std::int64_t now_ms, AppendOutcome* out,
                  Id* current_head) {
  LLMSYNC_ASSIGN_OR_RETURN(SessionRow s, LoadSessionRow(conn, batch.tenant, batch.session));
  *current_head = s.head;
  if (!batch.idempotency_key.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt get,
        conn.Prepare("SELECT request_digest, outcome FROM idempotency WHERE session = ? AND key = ?"));
    get.Bind(1, s.rowid).BindText(2, batch.idempotency_key);
    LLMSYNC_ASSIGN_OR_RETURN(bool seen, get.Step());
    if (seen) {
      LLMSYNC_ASSIGN_OR_RETURN(Id digest, get.ColumnId(0));
      if (digest != batch.request_digest) {
        return Status::Conflict("idempotency key '" + batch.idempotency_key +
                                "' was already used for a different request");
      }
      LLMSYNC_ASSIGN_OR_RETURN(*out, DecodeOutcome(get.ColumnBlob(1)));
      return Status::Ok();
    }
  }
  if (batch.expect_head && *batch.expect_head != s.head)
    return HeadConflict(*batch.expect_head, s.head, current_head);

  std::uint32_t depth = 0;
  if (!batch.parent.IsZero()) {
    LLMSYNC_ASSIGN_OR_RETURN(auto parent, FindNode(conn, s.rowid, batch.parent));
    if (!parent) return NodeNotInSession(batch.parent, batch.session);
    depth = parent->second;
  }
  bool last_created = false;
  for (const NodeRecord& n : batch.nodes) {
    if (depth == std::numeric_limits<std::uint32_t>::max())
      return Status::ResourceExhausted("the path is too deep");
    ++depth;
    std::uint64_t seq = s.last_seq + 1;
    LLMSYNC_ASSIGN_OR_RETURN(
        bool created, InsertNode(conn, s.rowid, n, seq, depth, /*purged=*/false, /*skip_existing=*/true));
    if (created) {
      s.last_seq = seq;
    } else {
      LLMSYNC_ASSIGN_OR_RETURN(auto existing, FindNode(conn, s.rowid, n.id));
      if (!existing) return Status::Internal("node " + n.id.ToHex() + " vanished during an append");
      seq = existing->first;
    }
    last_created = created;
    out->ids.push_back(n.id);
    out->seqs.push_back(seq);
    out->created.push_back(created);
  }
  if (batch.move_head && s.head != batch.nodes.back().id) {
    s.head = batch.nodes.back().id;
    s.head_seq = last_created ? s.last_seq : ++s.last_seq;
  }
  out->head = s.head;
  out->head_seq = s.head_seq;
  LLMSYNC_RETURN_IF_ERROR(StoreSessionRow(conn, s));
  if (!batch.idempotency_key.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt put,
        conn.Prepare("INSERT INTO idempotency (session, key, request_digest, outcome, created_at_ms) "
                     "VALUES (?, ?, ?, ?, ?)"));
    put.Bind(1, s.rowid)
        .BindText(2, batch.idempotency_key)
        .BindId(3, batch.request_digest)
        .BindBlob(4, EncodeOutcome(*out))
        .Bind(5, now_ms);
    LLMSYNC_RETURN_IF_ERROR(put.Run());
  }
  return Status::Ok();
}

}  // namespace

Result<AppendOutcome> SqliteStore::Append(const AppendBatch& batch, Id* conflict_head) {
  LLMSYNC_RETURN_IF_ERROR(CheckChain(batch));
  AppendOutcome outcome;
  Id current_head;
  std::int64_t now_ms = env_->UnixMillis();
  Status s = writer_->Run([&](Connection& conn) {
    outcome = AppendOutcome{};
    return AppendBody(conn, batch, now_ms, &outcome, &current_head);
  });
  if (!s.IsOk()) {
    if (s.Code() == StatusCode::kConflict && conflict_head != nullptr) *conflict_head = current_head;
    return s;
  }
  return outcome;
}

Result<SessionRecord> SqliteStore::SetHead(std::string_view tenant, const Id& session, const Id& node,
                                           const std::optional<Id>& expect_head, Id* conflict_head) {
  SessionRecord out;
  Id current_head;
  Status s = writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(SessionRow row, LoadSessionRow(conn, tenant, session));
    if (expect_head && *expect_head != row.head) return HeadConflict(*expect_head, row.head, &current_head);
    if (!node.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(auto found, FindNode(conn, row.rowid, node));
      if (!found) return NodeNotInSession(node, session);
    }
    if (row.head != node) {
      row.head = node;
      row.head_seq = ++row.last_seq;
      LLMSYNC_RETURN_IF_ERROR(StoreSessionRow(conn, row));
    }
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt get, conn.Prepare("SELECT tenant, model, created_at_ms FROM sessions WHERE rowid = ?"));
    get.Bind(1, row.rowid);
    LLMSYNC_ASSIGN_OR_RETURN(bool found, get.Step());
    if (!found) return SessionNotFound(session);
    out.id = session;
    out.tenant = get.ColumnText(0);
    LLMSYNC_ASSIGN_OR_RETURN(out.model, get.ColumnId(1));
    out.created_at_ms = get.ColumnInt(2);
    out.head = row.head;
    out.head_seq = row.head_seq;
    out.last_seq = row.last_seq;
    return Status::Ok();
  });
  if (!s.IsOk()) {
    if (s.Code() == StatusCode::kConflict && conflict_head != nullptr) *conflict_head = current_head;
    return s;
  }
  return out;
}

Result<std::uint64_t> SqliteStore::PurgeHidden(const std::optional<std::string>& tenant,
                                               std::int64_t created_before_ms) {
  return RunCountingChanges([&](Connection& conn) -> Result<Stmt> {
    static constexpr const char* kAll =
        "UPDATE nodes SET text = '', tokens = x'', sealed = NULL, purged = 1 "
        "WHERE hidden = 1 AND purged = 0 AND sealed IS NOT NULL AND created_at_ms < ?1";
    static constexpr const char* kTenant =
        "UPDATE nodes SET text = '', tokens = x'', sealed = NULL, purged = 1 "
        "WHERE hidden = 1 AND purged = 0 AND sealed IS NOT NULL AND created_at_ms < ?1 "
        "AND session IN (SELECT rowid FROM sessions WHERE tenant = ?2)";
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare(tenant ? kTenant : kAll));
    stmt.Bind(1, created_before_ms);
    if (tenant) stmt.BindText(2, *tenant);
    return stmt;
  });
}

Status SqliteStore::RestoreContent(std::string_view tenant, const Id& session, const Id& node,
                                   std::string_view text, const TokenIds& tokens, std::string_view sealed) {
  return writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(std::int64_t rowid, FindSessionRowid(conn, tenant, session));
    LLMSYNC_ASSIGN_OR_RETURN(auto found, FindNode(conn, rowid, node));
    if (!found) return NodeNotInSession(node, session);
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt stmt,
        conn.Prepare("UPDATE nodes SET text = ?, tokens = ?, token_count = ?, sealed = ?, purged = 0 "
                     "WHERE session = ? AND id = ? AND purged = 1"));
    stmt.BindText(1, text).BindTokens(2, tokens).Bind(3, static_cast<std::int64_t>(tokens.size()));
    if (sealed.empty()) {
      stmt.BindNull(4);
    } else {
      stmt.BindBlob(4, sealed);
    }
    stmt.Bind(5, rowid).BindId(6, node);
    return stmt.Run();
  });
}

Status SqliteStore::LoadSession(const SessionRecord& session, const std::vector<NodeRecord>& nodes) {
  return writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(Stmt exists, conn.Prepare("SELECT 1 FROM sessions WHERE id = ?"));
    exists.BindId(1, session.id);
    LLMSYNC_ASSIGN_OR_RETURN(bool taken, exists.Step());
    if (taken) return Status::AlreadyExists("session " + session.id.ToHex() + " already exists");
    LLMSYNC_ASSIGN_OR_RETURN(
        Stmt insert,
        conn.Prepare("INSERT INTO sessions (id, tenant, model, created_at_ms, head, head_seq, last_seq) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)"));
    insert.BindId(1, session.id)
        .BindText(2, session.tenant)
        .BindId(3, session.model)
        .Bind(4, session.created_at_ms)
        .BindIdOrNull(5, session.head)
        .Bind(6, static_cast<std::int64_t>(session.head_seq))
        .Bind(7, static_cast<std::int64_t>(session.last_seq));
    LLMSYNC_RETURN_IF_ERROR(insert.Run());
    std::int64_t rowid = conn.LastInsertRowid();
    for (const NodeRecord& n : nodes) {
      if (n.id.IsZero() || n.seq == 0 || n.seq > session.last_seq) {
        return Status::InvalidArgument("node " + n.id.ToHex() + " has a zero id or an invalid seq");
      }
      std::uint32_t parent_depth = 0;
      if (!n.parent.IsZero()) {
        LLMSYNC_ASSIGN_OR_RETURN(auto parent, FindNode(conn, rowid, n.parent));
        if (!parent) return Status::InvalidArgument("node " + n.id.ToHex() + " comes before its parent");
        parent_depth = parent->second;
      }
      if (n.depth != parent_depth + 1)
        return Status::InvalidArgument("node " + n.id.ToHex() + " has a wrong depth");
      Result<bool> inserted = InsertNode(conn, rowid, n, n.seq, n.depth, n.purged, /*skip_existing=*/false);
      if (!inserted.IsOk()) return inserted.GetStatus().WithContext("load node " + n.id.ToHex());
    }
    if (!session.head.IsZero()) {
      LLMSYNC_ASSIGN_OR_RETURN(auto head, FindNode(conn, rowid, session.head));
      if (!head)
        return Status::InvalidArgument("the head " + session.head.ToHex() + " is not among the nodes");
    }
    return Status::Ok();
  });
}

Result<std::uint64_t> SqliteStore::PruneIdempotency(std::int64_t created_before_ms) {
  return RunCountingChanges([&](Connection& conn) -> Result<Stmt> {
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, conn.Prepare("DELETE FROM idempotency WHERE created_at_ms < ?"));
    stmt.Bind(1, created_before_ms);
    return stmt;
  });
}

Result<std::uint64_t> SqliteStore::RunCountingChanges(
    const std::function<Result<Stmt>(Connection&)>& prepare_and_bind) {
  std::uint64_t changed = 0;
  Status s = writer_->Run([&](Connection& conn) -> Status {
    LLMSYNC_ASSIGN_OR_RETURN(Stmt stmt, prepare_and_bind(conn));
    LLMSYNC_RETURN_IF_ERROR(stmt.Run());
    changed = static_cast<std::uint64_t>(conn.Changes());
    return Status::Ok();
  });
  if (!s.IsOk()) return s;
  return changed;
}

}  // namespace llmsync::store
