#include "store/redis/redis_scripts.h"

#include <array>
#include <string>

namespace llmsync::store::redis {

namespace {

// Shared helpers: key names, errors, field lists. Ids are lower-case hex; an empty string is the
// zero id. Counters are formatted with %d so they never turn into exponent notation.
constexpr const char* kPrelude = R"lua(
local P = 'llmsync:'
local function I(x) return string.format('%d', x) end
local function skey(sid) return P .. 'session:' .. sid end
local function nkey(sid, nid) return P .. 'node:' .. sid .. ':' .. nid end
local function seqkey(sid) return P .. 'session:' .. sid .. ':seq' end
local function tipkey(sid) return P .. 'session:' .. sid .. ':tips' end
local function idemkey(sid) return P .. 'session:' .. sid .. ':idem' end
local function srunskey(sid) return P .. 'session:' .. sid .. ':runs' end
local function sallrunskey(sid) return P .. 'session:' .. sid .. ':allruns' end
local function tsesskey(t) return P .. 'sessions-of:' .. t end
local function trunskey(t) return P .. 'runs-of:' .. t end
local function rkey(rid) return P .. 'run:' .. rid end
local function evkey(rid) return P .. 'events:' .. rid end
local function feedkey(sid) return P .. 'session:' .. sid .. ':feed' end
local K_RUNS, K_LIVE, K_FINISHED, K_DELETED = P .. 'runs', P .. 'runs:live', P .. 'runs:finished', P .. 'runs:deleted'
local K_PURGEABLE, K_IDEM, K_COUNTER = P .. 'purgeable', P .. 'idempotency', P .. 'counter'
local K_ENGINES = P .. 'engines'
local function ekey(w) return P .. 'engine:' .. w end
local function dkey(rid) return P .. 'dispatch:' .. rid end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function engine_live(w, now)
  local until_ms = redis.call('ZSCORE', K_ENGINES, w)
  return until_ms ~= false and until_ms ~= nil and tonumber(until_ms) > now
end
local function fail(code, msg) return redis.error_reply(code .. ' ' .. msg) end
local function order() return string.format('%016d', redis.call('INCR', K_COUNTER)) end
local function session_missing(sid) return fail('NOTFOUND', 'session ' .. sid .. ' not found') end
local function run_missing(rid) return fail('NOTFOUND', 'run ' .. rid .. ' not found') end
local function not_in_session(nid, sid) return fail('NOTFOUND', 'node ' .. nid .. ' is not in session ' .. sid) end
local function tenant_of(sid) return redis.call('HGET', skey(sid), 'tenant') end
local SESSION_FIELDS = {'tenant', 'model', 'created', 'head', 'head_seq', 'last_seq', 'metadata'}
local NODE_FIELDS = {'parent', 'seq', 'depth', 'kind', 'hidden', 'purged', 'text', 'tokens', 'token_count', 'tool',
                     'call', 'sealed', 'created'}
local RUN_FIELDS = {'tenant', 'session', 'from', 'status', 'params', 'result', 'u0', 'u1', 'u2', 'u3', 'u4', 'error',
                    'created', 'updated', 'last_event_id', 'deleted'}
local STATUS_NAMES = {[0] = 'queued', 'running', 'succeeded', 'failed', 'cancelled'}
local function is_live(st) return st == '0' or st == '1' end
local function session_row(sid, out)
  local v = redis.call('HMGET', skey(sid), unpack(SESSION_FIELDS))
  out[#out + 1] = sid
  for i = 1, #v do out[#out + 1] = v[i] end
end
local function node_row(sid, nid, out)
  local v = redis.call('HMGET', nkey(sid, nid), unpack(NODE_FIELDS))
  if not v[2] then return false end
  out[#out + 1] = nid
  for i = 1, #v do out[#out + 1] = v[i] end
  return v
end
local function run_row(rid, out)
  local v = redis.call('HMGET', rkey(rid), unpack(RUN_FIELDS))
  out[#out + 1] = rid
  for i = 1, #v do out[#out + 1] = v[i] end
end
)lua";

// ARGV: sid tenant model created
constexpr const char* kCreateSession = R"lua(
local sid, tenant, created = ARGV[1], ARGV[2], ARGV[4]
if redis.call('EXISTS', skey(sid)) == 1 then return fail('EXISTS', 'session ' .. sid .. ' already exists') end
local o = order()
redis.call('HSET', skey(sid), 'tenant', tenant, 'model', ARGV[3], 'created', created, 'head', '', 'head_seq', 0,
           'last_seq', 0, 'o', o)
redis.call('ZADD', tsesskey(tenant), created, o .. ':' .. sid)
return 'OK'
)lua";

// ARGV: tenant limit. Newest first (ties: the later created first).
constexpr const char* kListSessions = R"lua(
local members = redis.call('ZREVRANGE', tsesskey(ARGV[1]), 0, tonumber(ARGV[2]) - 1)
local out = {}
for _, m in ipairs(members) do session_row(string.sub(m, 18), out) end
return out
)lua";

// ARGV: sid tenant metadata. Returns the session row.
constexpr const char* kSetSessionMetadata = R"lua(
local sid, tenant = ARGV[1], ARGV[2]
if tenant_of(sid) ~= tenant then return session_missing(sid) end
redis.call('HSET', skey(sid), 'metadata', ARGV[3])
local out = {}
session_row(sid, out)
return out
)lua";

// ARGV: sid tenant. Deletes the session with its nodes, idempotency records, runs and events.
constexpr const char* kDeleteSession = R"lua(
local sid, tenant = ARGV[1], ARGV[2]
if tenant_of(sid) ~= tenant then return session_missing(sid) end
for _, nid in ipairs(redis.call('ZRANGE', seqkey(sid), 0, -1)) do
  redis.call('DEL', nkey(sid, nid))
  redis.call('ZREM', K_PURGEABLE, sid .. ':' .. nid)
end
for _, k in ipairs(redis.call('HKEYS', idemkey(sid))) do redis.call('ZREM', K_IDEM, sid .. '|' .. k) end
for _, rid in ipairs(redis.call('SMEMBERS', sallrunskey(sid))) do
  local o = redis.call('HGET', rkey(rid), 'o')
  if o then
    local m = o .. ':' .. rid
    redis.call('ZREM', K_RUNS, m)
    redis.call('ZREM', trunskey(tenant), m)
    redis.call('ZREM', K_LIVE, m)
  end
  redis.call('ZREM', K_FINISHED, rid)
  redis.call('SREM', K_DELETED, rid)
  redis.call('DEL', rkey(rid), evkey(rid))
end
local o = redis.call('HGET', skey(sid), 'o')
redis.call('ZREM', tsesskey(tenant), o .. ':' .. sid)
redis.call('DEL', skey(sid), seqkey(sid), tipkey(sid), idemkey(sid), srunskey(sid), sallrunskey(sid), feedkey(sid))
return 'OK'
)lua";

// ARGV: sid tenant parent has_expect expect idem_key digest move_head now n, then per node:
// nid kind hidden text tokens token_count tool call sealed created (the parent is the previous).
// Returns {'ok'|'replay', outcome} with outcome "head:head_seq;nid:seq:created;...".
constexpr const char* kAppend = R"lua(
local sid, tenant, parent, ikey = ARGV[1], ARGV[2], ARGV[3], ARGV[6]
local s = redis.call('HMGET', skey(sid), 'tenant', 'head', 'head_seq', 'last_seq')
if s[1] ~= tenant then return session_missing(sid) end
local head, head_seq, last_seq = s[2], tonumber(s[3]), tonumber(s[4])
if ikey ~= '' then
  local rec = redis.call('HGET', idemkey(sid), ikey)
  if rec then
    if string.sub(rec, 1, 64) ~= ARGV[7] then
      return fail('CONFLICT', "idempotency key '" .. ikey .. "' was already used for a different request")
    end
    return {'replay', string.sub(rec, 66)}
  end
end
if ARGV[4] == '1' and ARGV[5] ~= head then return fail('HEADCONFLICT', head) end
local depth = 0
if parent ~= '' then
  local d = redis.call('HGET', nkey(sid, parent), 'depth')
  if not d then return not_in_session(parent, sid) end
  depth = tonumber(d)
end
local n = tonumber(ARGV[10])
local out, prev, last_created = {}, parent, false
for i = 0, n - 1 do
  local b = 11 + i * 10
  local nid = ARGV[b]
  depth = depth + 1
  local key = nkey(sid, nid)
  local existing = redis.call('HGET', key, 'seq')
  local seq, created
  if existing then
    seq, created = tonumber(existing), '0'
  else
    last_seq = last_seq + 1
    seq, created = last_seq, '1'
    redis.call('HSET', key, 'parent', prev, 'seq', I(seq), 'depth', I(depth), 'kind', ARGV[b + 1], 'hidden',
               ARGV[b + 2], 'purged', '0', 'text', ARGV[b + 3], 'tokens', ARGV[b + 4], 'token_count', ARGV[b + 5],
               'tool', ARGV[b + 6], 'call', ARGV[b + 7], 'sealed', ARGV[b + 8], 'created', ARGV[b + 9])
    redis.call('ZADD', seqkey(sid), seq, nid)
    redis.call('ZADD', tipkey(sid), seq, nid)
    if prev ~= '' then redis.call('ZREM', tipkey(sid), prev) end
    if ARGV[b + 2] == '1' and ARGV[b + 8] ~= '' then
      redis.call('ZADD', K_PURGEABLE, ARGV[b + 9], sid .. ':' .. nid)
    end
  end
  last_created = created == '1'
  out[#out + 1] = nid .. ':' .. I(seq) .. ':' .. created
  prev = nid
end
if ARGV[8] == '1' and head ~= prev then
  head = prev
  if not last_created then last_seq = last_seq + 1 end
  head_seq = last_seq
end
redis.call('HSET', skey(sid), 'head', head, 'head_seq', I(head_seq), 'last_seq', I(last_seq))
local outcome = head .. ':' .. I(head_seq) .. ';' .. table.concat(out, ';')
if ikey ~= '' then
  redis.call('HSET', idemkey(sid), ikey, ARGV[7] .. '|' .. outcome)
  redis.call('ZADD', K_IDEM, ARGV[9], sid .. '|' .. ikey)
end
return {'ok', outcome}
)lua";

// ARGV: sid tenant node has_expect expect. Returns the session row.
constexpr const char* kSetHead = R"lua(
local sid, tenant, node = ARGV[1], ARGV[2], ARGV[3]
local s = redis.call('HMGET', skey(sid), 'tenant', 'head', 'last_seq')
if s[1] ~= tenant then return session_missing(sid) end
if ARGV[4] == '1' and ARGV[5] ~= s[2] then return fail('HEADCONFLICT', s[2]) end
if node ~= '' and redis.call('EXISTS', nkey(sid, node)) == 0 then return not_in_session(node, sid) end
if s[2] ~= node then
  local seq = I(tonumber(s[3]) + 1)
  redis.call('HSET', skey(sid), 'head', node, 'head_seq', seq, 'last_seq', seq)
end
local out = {}
session_row(sid, out)
return out
)lua";

// ARGV: sid tenant nid
constexpr const char* kGetNode = R"lua(
local sid, nid = ARGV[1], ARGV[3]
if tenant_of(sid) ~= ARGV[2] then return session_missing(sid) end
local out = {}
if not node_row(sid, nid, out) then return not_in_session(nid, sid) end
return out
)lua";

// ARGV: sid tenant nid. The nodes from the root down, each a node row.
constexpr const char* kGetPath = R"lua(
local sid, nid = ARGV[1], ARGV[3]
if tenant_of(sid) ~= ARGV[2] then return session_missing(sid) end
local rows, cur, want = {}, nid, nil
while cur ~= '' do
  local row = {}
  local v = node_row(sid, cur, row)
  if not v then
    if #rows == 0 then return not_in_session(nid, sid) end
    return fail('DATALOSS', 'the path to node ' .. nid .. ' is broken')
  end
  local depth = tonumber(v[3])
  if want and depth ~= want then return fail('DATALOSS', 'the path to node ' .. nid .. ' is broken') end
  want = depth - 1
  rows[#rows + 1] = row
  cur = v[1]
end
if want ~= 0 then return fail('DATALOSS', 'the path to node ' .. nid .. ' is broken') end
local out = {}
for i = #rows, 1, -1 do
  for _, x in ipairs(rows[i]) do out[#out + 1] = x end
end
return out
)lua";

// ARGV: sid tenant since limit. Returns the session row, then '1'/'0' (more), then node rows.
constexpr const char* kChangesSince = R"lua(
local sid, limit = ARGV[1], tonumber(ARGV[4])
if tenant_of(sid) ~= ARGV[2] then return session_missing(sid) end
local out = {}
session_row(sid, out)
local ids = redis.call('ZRANGEBYSCORE', seqkey(sid), '(' .. ARGV[3], '+inf', 'LIMIT', 0, limit + 1)
local more = #ids > limit
out[#out + 1] = more and '1' or '0'
for i = 1, math.min(#ids, limit) do node_row(sid, ids[i], out) end
return out
)lua";

// ARGV: sid tenant limit. Groups of (nid seq depth created), oldest first.
constexpr const char* kBranchTips = R"lua(
local sid = ARGV[1]
if tenant_of(sid) ~= ARGV[2] then return session_missing(sid) end
local out = {}
for _, nid in ipairs(redis.call('ZRANGE', tipkey(sid), 0, tonumber(ARGV[3]) - 1)) do
  local v = redis.call('HMGET', nkey(sid, nid), 'seq', 'depth', 'created')
  out[#out + 1] = nid
  out[#out + 1] = v[1]
  out[#out + 1] = v[2]
  out[#out + 1] = v[3]
end
return out
)lua";

// ARGV: has_tenant tenant cutoff. Returns how many nodes were purged.
constexpr const char* kPurgeHidden = R"lua(
local count = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', K_PURGEABLE, '-inf', '(' .. ARGV[3])) do
  local sid, nid = string.sub(m, 1, 64), string.sub(m, 66)
  local t = tenant_of(sid)
  if not t then
    redis.call('ZREM', K_PURGEABLE, m)
  elseif ARGV[1] == '0' or t == ARGV[2] then
    if redis.call('HGET', nkey(sid, nid), 'purged') == '0' then
      redis.call('HSET', nkey(sid, nid), 'text', '', 'tokens', '', 'sealed', '', 'purged', '1')
      count = count + 1
    end
    redis.call('ZREM', K_PURGEABLE, m)
  end
end
return count
)lua";

// ARGV: sid tenant nid text tokens token_count sealed
constexpr const char* kRestoreContent = R"lua(
local sid, nid = ARGV[1], ARGV[3]
if tenant_of(sid) ~= ARGV[2] then return session_missing(sid) end
local v = redis.call('HMGET', nkey(sid, nid), 'purged', 'hidden', 'created')
if not v[1] then return not_in_session(nid, sid) end
if v[1] == '1' then
  redis.call('HSET', nkey(sid, nid), 'text', ARGV[4], 'tokens', ARGV[5], 'token_count', ARGV[6], 'sealed', ARGV[7],
             'purged', '0')
  if v[2] == '1' and ARGV[7] ~= '' then redis.call('ZADD', K_PURGEABLE, v[3], sid .. ':' .. nid) end
end
return 'OK'
)lua";

// ARGV: sid tenant model created head head_seq last_seq n, then per node the 14 fields
// nid parent seq depth kind hidden purged text tokens token_count tool call sealed created.
constexpr const char* kLoadSession = R"lua(
local sid, tenant, head = ARGV[1], ARGV[2], ARGV[5]
if redis.call('EXISTS', skey(sid)) == 1 then return fail('EXISTS', 'session ' .. sid .. ' already exists') end
local n = tonumber(ARGV[8])
local depths, seqs, parents = {}, {}, {}
for i = 0, n - 1 do
  local b = 9 + i * 14
  local nid, parent, seq, depth = ARGV[b], ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3])
  if depths[nid] or seqs[seq] then return fail('INVALID', 'node ' .. nid .. ' or its seq appears twice') end
  local parent_depth = 0
  if parent ~= '' then
    parent_depth = depths[parent]
    if not parent_depth then return fail('INVALID', 'node ' .. nid .. ' comes before its parent') end
  end
  if depth ~= parent_depth + 1 then return fail('INVALID', 'node ' .. nid .. ' has a wrong depth') end
  depths[nid], seqs[seq], parents[parent] = depth, true, true
end
if head ~= '' and not depths[head] then
  return fail('INVALID', 'the head ' .. head .. ' is not among the nodes')
end
local o = order()
redis.call('HSET', skey(sid), 'tenant', tenant, 'model', ARGV[3], 'created', ARGV[4], 'head', head, 'head_seq',
           ARGV[6], 'last_seq', ARGV[7], 'o', o)
redis.call('ZADD', tsesskey(tenant), ARGV[4], o .. ':' .. sid)
for i = 0, n - 1 do
  local b = 9 + i * 14
  local nid = ARGV[b]
  redis.call('HSET', nkey(sid, nid), 'parent', ARGV[b + 1], 'seq', ARGV[b + 2], 'depth', ARGV[b + 3], 'kind',
             ARGV[b + 4], 'hidden', ARGV[b + 5], 'purged', ARGV[b + 6], 'text', ARGV[b + 7], 'tokens', ARGV[b + 8],
             'token_count', ARGV[b + 9], 'tool', ARGV[b + 10], 'call', ARGV[b + 11], 'sealed', ARGV[b + 12],
             'created', ARGV[b + 13])
  redis.call('ZADD', seqkey(sid), ARGV[b + 2], nid)
  if not parents[nid] then redis.call('ZADD', tipkey(sid), ARGV[b + 2], nid) end
  if ARGV[b + 5] == '1' and ARGV[b + 6] == '0' and ARGV[b + 12] ~= '' then
    redis.call('ZADD', K_PURGEABLE, ARGV[b + 13], sid .. ':' .. nid)
  end
end
return 'OK'
)lua";

// ARGV: cutoff. Returns how many records were forgotten.
constexpr const char* kPruneIdempotency = R"lua(
local count = 0
for _, m in ipairs(redis.call('ZRANGEBYSCORE', K_IDEM, '-inf', '(' .. ARGV[1])) do
  count = count + redis.call('HDEL', idemkey(string.sub(m, 1, 64)), string.sub(m, 66))
end
redis.call('ZREMRANGEBYSCORE', K_IDEM, '-inf', '(' .. ARGV[1])
return count
)lua";

// ARGV: rid then the 16 RUN_FIELDS values (last_event_id and deleted ignored).
constexpr const char* kCreateRun = R"lua(
local rid, tenant, sid, from = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if tenant_of(sid) ~= tenant then return session_missing(sid) end
if from ~= '' and redis.call('EXISTS', nkey(sid, from)) == 0 then return not_in_session(from, sid) end
if redis.call('EXISTS', rkey(rid)) == 1 then return fail('EXISTS', 'run ' .. rid .. ' already exists') end
local o = order()
local args = {}
for i = 1, 14 do
  args[#args + 1] = RUN_FIELDS[i]
  args[#args + 1] = ARGV[i + 1]
end
redis.call('HSET', rkey(rid), 'last_event_id', '0', 'deleted', '0', 'o', o, unpack(args))
local m, created = o .. ':' .. rid, ARGV[14]
redis.call('ZADD', K_RUNS, created, m)
redis.call('ZADD', trunskey(tenant), created, m)
redis.call('ZADD', srunskey(sid), created, m)
redis.call('SADD', sallrunskey(sid), rid)
if is_live(ARGV[5]) then redis.call('ZADD', K_LIVE, created, m) else redis.call('ZADD', K_FINISHED, ARGV[15], rid) end
return 'OK'
)lua";

// ARGV: rid tenant
constexpr const char* kDeleteRun = R"lua(
local rid, tenant = ARGV[1], ARGV[2]
local v = redis.call('HMGET', rkey(rid), 'tenant', 'deleted', 'session', 'o')
if v[1] ~= tenant or v[2] ~= '0' then return run_missing(rid) end
redis.call('HSET', rkey(rid), 'deleted', '1')
local m = v[4] .. ':' .. rid
redis.call('ZREM', K_RUNS, m)
redis.call('ZREM', trunskey(tenant), m)
redis.call('ZREM', srunskey(v[3]), m)
redis.call('ZREM', K_LIVE, m)
redis.call('DEL', evkey(rid))
redis.call('SADD', K_DELETED, rid)
return 'OK'
)lua";

// ARGV: rid tenant has_expect expect has_status status has_result result has_usage u0 u1 u2 u3 u4
// has_error error now. Returns the run row.
constexpr const char* kUpdateRun = R"lua(
local rid, tenant = ARGV[1], ARGV[2]
local v = redis.call('HMGET', rkey(rid), 'tenant', 'status', 'deleted', 'o', 'created', 'lease_epoch')
if v[1] ~= tenant then return run_missing(rid) end
-- ARGV[19]: the writer's lease epoch (0: unfenced); refused once another worker claimed the run.
local fence = tonumber(ARGV[19])
if fence > 0 and fence ~= tonumber(v[6] or '0') then
  return fail('FENCED', 'run ' .. rid .. ' was claimed by another worker (lease epoch ' .. (v[6] or '0') ..
              ', this writer holds ' .. ARGV[19] .. ')')
end
if fence > 0 and not is_live(v[2]) then
  return fail('FENCED', 'run ' .. rid .. ' was finished by another process (' .. STATUS_NAMES[tonumber(v[2])] .. ')')
end
if ARGV[3] == '1' and ARGV[4] ~= v[2] then
  return fail('CONFLICT', 'run ' .. rid .. ' is ' .. STATUS_NAMES[tonumber(v[2])] .. ', not ' ..
              STATUS_NAMES[tonumber(ARGV[4])])
end
local status = v[2]
if ARGV[5] == '1' then status = ARGV[6] end
local args = {'status', status, 'updated', ARGV[17]}
if ARGV[7] == '1' then args[#args + 1] = 'result'; args[#args + 1] = ARGV[8] end
if ARGV[9] == '1' then
  for i = 0, 4 do args[#args + 1] = 'u' .. i; args[#args + 1] = ARGV[10 + i] end
end
if ARGV[15] == '1' then args[#args + 1] = 'error'; args[#args + 1] = ARGV[16] end
-- ARGV[18]: how many events follow (after the epoch) as (type, payload) pairs; they commit with the status.
local nev = tonumber(ARGV[18] or '0')
if nev > 0 then
  local last = tonumber(redis.call('HGET', rkey(rid), 'last_event_id') or '0')
  for e = 0, nev - 1 do
    last = last + 1
    redis.call('XADD', evkey(rid), I(last) .. '-0', 't', ARGV[20 + e * 2], 'p', ARGV[21 + e * 2], 'c', ARGV[17])
  end
  args[#args + 1] = 'last_event_id'; args[#args + 1] = I(last)
  if v[3] == '1' then redis.call('SADD', K_DELETED, rid) end
end
redis.call('HSET', rkey(rid), unpack(args))
local m = v[4] .. ':' .. rid
if is_live(status) then
  redis.call('ZREM', K_FINISHED, rid)
  if v[3] == '0' then redis.call('ZADD', K_LIVE, v[5], m) end
else
  redis.call('ZREM', K_LIVE, m)
  redis.call('ZADD', K_FINISHED, ARGV[17], rid)
end
local out = {}
run_row(rid, out)
return out
)lua";

// ARGV: index tenant session limit status... Oldest first; the index is scanned in pages.
constexpr const char* kListRuns = R"lua(
local index, tenant, sid, limit = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local wanted = nil
if #ARGV > 4 then
  wanted = {}
  for i = 5, #ARGV do wanted[ARGV[i]] = true end
end
local out, found, start = {}, 0, 0
while found < limit do
  local page = redis.call('ZRANGE', index, start, start + 255)
  if #page == 0 then break end
  start = start + #page
  for _, m in ipairs(page) do
    local rid = string.sub(m, 18)
    local v = redis.call('HMGET', rkey(rid), 'tenant', 'session', 'status', 'deleted')
    if v[1] and v[4] == '0' and (tenant == '' or v[1] == tenant) and (sid == '' or v[2] == sid) and
        (not wanted or wanted[v[3]]) then
      run_row(rid, out)
      found = found + 1
      if found == limit then break end
    end
  end
end
return out
)lua";

// ARGV: now nsub, then per submission: count, then per event: rid tenant type payload epoch.
// Every submission whose runs all exist for its tenant, and whose fenced events (epoch > 0) carry
// their run's current lease epoch on a run still queued or running, gets the next ids ("ok:1,2");
// the others fail alone before anything is written ("nf:<rid>", or "fenced:<rid>:<epoch now>"
// when the lease was taken over or another process finished the run, e.g. a cancel).
constexpr const char* kAppendEvents = R"lua(
local now, nsub = ARGV[1], tonumber(ARGV[2])
local runs, subs, at = {}, {}, 3
for s = 1, nsub do
  local count = tonumber(ARGV[at])
  local sub = {first = at + 1, count = count, bad = nil}
  for e = 0, count - 1 do
    local b = at + 1 + e * 5
    local rid, tenant, epoch = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 4])
    local r = runs[rid]
    if r == nil then
      local v = redis.call('HMGET', rkey(rid), 'tenant', 'last_event_id', 'status', 'deleted', 'updated',
                           'lease_epoch')
      if v[1] then
        r = {tenant = v[1], last = tonumber(v[2]), status = v[3], deleted = v[4], updated = v[5],
             epoch = tonumber(v[6] or '0'), touched = false}
      else
        r = false
      end
      runs[rid] = r
    end
    if not sub.bad then
      if not r or r.tenant ~= tenant then
        sub.bad = 'nf:' .. rid
      elseif epoch > 0 and (epoch ~= r.epoch or not is_live(r.status)) then
        sub.bad = 'fenced:' .. rid .. ':' .. I(r.epoch)
      end
    end
  end
  subs[s] = sub
  at = at + 1 + count * 5
end
local out = {}
for s = 1, nsub do
  local sub = subs[s]
  if sub.bad then
    out[s] = sub.bad
  else
    local ids = {}
    for e = 0, sub.count - 1 do
      local b = sub.first + e * 5
      local r = runs[ARGV[b]]
      r.last = r.last + 1
      r.touched = true
      redis.call('XADD', evkey(ARGV[b]), I(r.last) .. '-0', 't', ARGV[b + 2], 'p', ARGV[b + 3], 'c', now)
      ids[#ids + 1] = I(r.last)
    end
    out[s] = 'ok:' .. table.concat(ids, ',')
  end
end
for rid, r in pairs(runs) do
  if r and r.touched then
    redis.call('HSET', rkey(rid), 'last_event_id', I(r.last))
    if r.deleted == '1' then redis.call('SADD', K_DELETED, rid) end
    if not is_live(r.status) then redis.call('ZADD', K_FINISHED, r.updated, rid) end
  end
end
return out
)lua";

// ARGV: rid tenant after limit. Returns the XRANGE entries.
constexpr const char* kReadEvents = R"lua(
local rid = ARGV[1]
local v = redis.call('HMGET', rkey(rid), 'tenant', 'deleted')
if v[1] ~= ARGV[2] or v[2] ~= '0' then return run_missing(rid) end
return redis.call('XRANGE', evkey(rid), I(tonumber(ARGV[3]) + 1) .. '-0', '+', 'COUNT', ARGV[4])
)lua";

// ARGV: cutoff. Deletes the events of deleted runs and of runs finished before the cutoff.
constexpr const char* kPruneEvents = R"lua(
local count = 0
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', K_FINISHED, '-inf', '(' .. ARGV[1])) do
  count = count + redis.call('XLEN', evkey(rid))
  redis.call('DEL', evkey(rid))
  redis.call('ZREM', K_FINISHED, rid)
end
for _, rid in ipairs(redis.call('SMEMBERS', K_DELETED)) do
  count = count + redis.call('XLEN', evkey(rid))
  redis.call('DEL', evkey(rid))
  redis.call('SREM', K_DELETED, rid)
end
return count
)lua";

// ARGV: rid worker ttl_ms epoch. Claims (epoch 0) or renews (the epoch of the claim) the run's
// lease. A claim succeeds only while nobody holds the lease, the claiming worker included (so a
// run submitted here and seen by this worker's own scan is claimed once), and increments the
// run's lease_epoch, the fencing token that append_events and update_run check; a renewal fails
// (0) once the epoch moved. Records the worker on the run. Returns the epoch held, or 0.
// Dispatch: a queued run offered to another engine (dispatch:<rid>) is left to it while that
// engine is live and the offer is younger than its grace period. A claim records why the run is
// here: the dispatcher's reason when the target claims it, 'takeover' for a run that was running,
// 'fallback' otherwise; and takes the offer off the target's queue.
constexpr const char* kLeaseRun = R"lua(
local rid, worker, want = ARGV[1], ARGV[2], tonumber(ARGV[4])
local k = P .. 'lease:' .. rid
local cur = redis.call('GET', k)
if cur and (cur ~= worker or want == 0) then return 0 end
local exists = redis.call('EXISTS', rkey(rid)) == 1
local epoch = tonumber(redis.call('HGET', rkey(rid), 'lease_epoch') or '0')
local placed = nil
if want > 0 then
  if want ~= epoch then return 0 end
elseif exists then
  local d = redis.call('HMGET', dkey(rid), 'target', 'reason', 'matched', 'offered', 'grace')
  local status = redis.call('HGET', rkey(rid), 'status')
  local target = d[1] or ''
  if status == '0' and target ~= '' and target ~= worker then
    local now = now_ms()
    if engine_live(target, now) and now - tonumber(d[4]) < tonumber(d[5]) then return 0 end
  end
  placed = {'target', target, 'reason', 'fallback', 'matched', '0'}
  if status == '1' then
    placed[4] = 'takeover'
  elseif target == worker then
    placed[4], placed[6] = d[2], d[3]
  end
  if target ~= '' then redis.call('ZREM', ekey(target) .. ':offers', rid) end
end
if want == 0 then epoch = epoch + 1 end
redis.call('SET', k, worker, 'PX', ARGV[3])
if exists then
  redis.call('HSET', rkey(rid), 'worker', worker, 'lease_epoch', I(epoch))
  if placed then redis.call('HSET', rkey(rid), unpack(placed)) end
end
return epoch
)lua";

// ARGV: sid seq type payload now. Adds a live event to the session's feed (a stream of at most about
// 1,000 entries, so a feed nobody reads stays small). Its entry id is "<seq>-<n>" with seq raised to
// the feed's last one, so ids follow session seqs and never go down. Returns the entry id.
constexpr const char* kPublishSessionEvent = R"lua(
if redis.call('EXISTS', skey(ARGV[1])) == 0 then return session_missing(ARGV[1]) end
local k = feedkey(ARGV[1])
local seq = tonumber(ARGV[2])
local last = redis.call('XREVRANGE', k, '+', '-', 'COUNT', 1)
if #last > 0 then
  local s = tonumber(string.match(last[1][1], '^(%d+)-'))
  if s > seq then seq = s end
end
return redis.call('XADD', k, 'MAXLEN', '~', '1000', I(seq) .. '-*', 't', ARGV[3], 'p', ARGV[4], 'c', ARGV[5])
)lua";

// ARGV: worker ttl_ms cap active queued_runs queued_tokens n_added added... removed...
// An engine's heartbeat: its load (engine:<w>, expiring after ttl_ms, and its expiry in the engines
// zset) and the changes to its KV directory (engine:<w>:kv, members scored by when they were last
// published, the oldest dropped beyond cap; kept ten heartbeats' worth of TTL after the engine dies,
// though only live engines are consulted).
constexpr const char* kPublishEngine = R"lua(
local w, ttl, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local ek = ekey(w)
redis.call('HSET', ek, 'active', ARGV[4], 'queued_runs', ARGV[5], 'queued_tokens', ARGV[6], 'beat', I(now))
redis.call('PEXPIRE', ek, ttl)
redis.call('ZADD', K_ENGINES, now + ttl, w)
redis.call('ZREMRANGEBYSCORE', K_ENGINES, '-inf', now - 600000)
local kk = ek .. ':kv'
local n = tonumber(ARGV[7])
for i = 8, 7 + n do redis.call('ZADD', kk, now, ARGV[i]) end
for i = 8 + n, #ARGV do redis.call('ZREM', kk, ARGV[i]) end
local over = redis.call('ZCARD', kk) - cap
if over > 0 then redis.call('ZREMRANGEBYRANK', kk, 0, over - 1) end
if redis.call('EXISTS', kk) == 1 then redis.call('PEXPIRE', kk, math.max(60000, 10 * ttl)) end
return 1
)lua";

// ARGV: worker. A graceful stop: the engine and its directory go at once.
constexpr const char* kRetireEngine = R"lua(
redis.call('ZREM', K_ENGINES, ARGV[1])
redis.call('DEL', ekey(ARGV[1]), ekey(ARGV[1]) .. ':kv', ekey(ARGV[1]) .. ':offers')
return 1
)lua";

// ARGV: rid sid mode bound grace_ms n member_1..member_n depth_1..depth_n (deepest first).
// Chooses the engine for a run and offers it there (engine:<w>:offers, dispatch:<rid>). Load is
// active + queued runs (the heartbeat) + offers younger than the grace period (older ones are
// anyone's). round_robin: the next live engine. cache_aware: the session's lease holder when live;
// else, of the live engines holding the deepest member of the path, the least loaded, unless its
// queue (queued + offered) exceeds the bound; else the least loaded live engine. Ties rotate.
// Returns {target, reason, matched tokens}; target '' when no engine is live.
constexpr const char* kDispatchRun = R"lua(
local rid, sid, mode, bound, grace = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local n = tonumber(ARGV[6])
local now = now_ms()
local live = redis.call('ZRANGEBYSCORE', K_ENGINES, '(' .. I(now), '+inf')
local function offer(target, reason, matched)
  if target ~= '' then redis.call('ZADD', ekey(target) .. ':offers', now, rid) end
  redis.call('HSET', dkey(rid), 'target', target, 'reason', reason, 'matched', I(matched), 'offered', I(now),
             'grace', I(grace))
  redis.call('PEXPIRE', dkey(rid), 3600000)
  return {target, reason, I(matched)}
end
if #live == 0 then return offer('', 'fallback', 0) end
local load, queue = {}, {}
for _, w in ipairs(live) do
  local v = redis.call('HMGET', ekey(w), 'active', 'queued_runs')
  local ok = ekey(w) .. ':offers'
  redis.call('ZREMRANGEBYSCORE', ok, '-inf', '(' .. I(now - grace))
  queue[w] = tonumber(v[2] or '0') + redis.call('ZCARD', ok)
  load[w] = tonumber(v[1] or '0') + queue[w]
end
local rr = redis.call('INCR', P .. 'dispatch:rr')
local function least(cands)
  local best = nil
  for k = 0, #cands - 1 do
    local w = cands[(rr + k) % #cands + 1]
    if best == nil or load[w] < load[best] then best = w end
  end
  return best
end
local function depth_on(w)
  for i = 1, n do
    if redis.call('ZSCORE', ekey(w) .. ':kv', ARGV[6 + i]) then return tonumber(ARGV[6 + n + i]) end
  end
  return 0
end
if mode == 'round_robin' then
  local w = live[rr % #live + 1]
  return offer(w, 'round_robin', depth_on(w))
end
local holder = redis.call('GET', P .. 'kvlease:' .. sid)
if holder and load[holder] ~= nil then return offer(holder, 'lease', depth_on(holder)) end
for i = 1, n do
  local holders = {}
  for _, w in ipairs(live) do
    if redis.call('ZSCORE', ekey(w) .. ':kv', ARGV[6 + i]) then holders[#holders + 1] = w end
  end
  if #holders > 0 then
    local w = least(holders)
    if queue[w] <= bound then return offer(w, 'cache_hit', tonumber(ARGV[6 + n + i])) end
    break
  end
end
local w = least(live)
return offer(w, 'least_loaded', depth_on(w))
)lua";

// ARGV: rid. Takes back the offer of a run that was never created.
constexpr const char* kWithdrawDispatch = R"lua(
local target = redis.call('HGET', dkey(ARGV[1]), 'target')
if target and target ~= '' then redis.call('ZREM', ekey(target) .. ':offers', ARGV[1]) end
redis.call('DEL', dkey(ARGV[1]))
return 1
)lua";

// ARGV: rid. {worker, target, reason, matched}: the claim's record, else the pending offer.
constexpr const char* kRunPlacement = R"lua(
local v = redis.call('HMGET', rkey(ARGV[1]), 'worker', 'target', 'reason', 'matched')
if v[3] then return {v[1] or '', v[2] or '', v[3], v[4] or '0'} end
local d = redis.call('HMGET', dkey(ARGV[1]), 'target', 'reason', 'matched')
return {v[1] or '', d[1] or '', d[2] or '', d[3] or '0'}
)lua";

// ARGV: sid worker. Forgets the session's lease holder if it is still `worker`.
constexpr const char* kUnpinSession = R"lua(
local k = P .. 'kvlease:' .. ARGV[1]
if redis.call('GET', k) == ARGV[2] then redis.call('DEL', k) end
return 1
)lua";

struct Entry {
  const char* name;
  const char* body;
};

constexpr std::array<Entry, kScriptCount> kScripts = {{
    {"create_session", kCreateSession},
    {"list_sessions", kListSessions},
    {"delete_session", kDeleteSession},
    {"append", kAppend},
    {"set_head", kSetHead},
    {"get_node", kGetNode},
    {"get_path", kGetPath},
    {"changes_since", kChangesSince},
    {"branch_tips", kBranchTips},
    {"purge_hidden", kPurgeHidden},
    {"restore_content", kRestoreContent},
    {"load_session", kLoadSession},
    {"prune_idempotency", kPruneIdempotency},
    {"create_run", kCreateRun},
    {"delete_run", kDeleteRun},
    {"update_run", kUpdateRun},
    {"list_runs", kListRuns},
    {"append_events", kAppendEvents},
    {"read_events", kReadEvents},
    {"prune_events", kPruneEvents},
    {"lease_run", kLeaseRun},
    {"set_session_metadata", kSetSessionMetadata},
    {"publish_session_event", kPublishSessionEvent},
    {"publish_engine", kPublishEngine},
    {"retire_engine", kRetireEngine},
    {"dispatch_run", kDispatchRun},
    {"withdraw_dispatch", kWithdrawDispatch},
    {"run_placement", kRunPlacement},
    {"unpin_session", kUnpinSession},
}};

const std::array<std::string, kScriptCount>& Sources() {
  static const std::array<std::string, kScriptCount> kSources = [] {
    std::array<std::string, kScriptCount> s;
    for (int i = 0; i < kScriptCount; ++i) s[i] = std::string(kPrelude) + kScripts[i].body;
    return s;
  }();
  return kSources;
}

}  // namespace

std::string_view ScriptSource(Script script) { return Sources()[static_cast<int>(script)]; }
std::string_view ScriptName(Script script) { return kScripts[static_cast<int>(script)].name; }

}  // namespace llmsync::store::redis
