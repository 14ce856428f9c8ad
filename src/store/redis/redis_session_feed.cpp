// RedisStore: the session event feed shared by every process (Store::PublishSessionEvent).
//
// Each session has a stream `session:<sid>:feed` whose entry ids are "<seq>-<n>": the session seq
// the event reflects (raised to the previous entry's, so ids never go down) and a counter. A
// follower waits on the feeds of every session it serves with one XREAD BLOCK, so a process holds
// one blocking connection for all its session subscribers, not one per subscriber.
#include <algorithm>

#include "store/redis/redis_store_impl.h"

namespace llmsync::store::redis {

namespace {

constexpr std::string_view kFeedPrefix = "llmsync:session:";
constexpr std::string_view kFeedSuffix = ":feed";

std::string FeedKey(const Id& session) {
  return std::string(kFeedPrefix) + session.ToHex() + std::string(kFeedSuffix);
}

Status Corrupt(const std::string& what) { return Status::DataLoss("redis holds a corrupt " + what); }

// A feed entry ["<seq>-<n>", ["t", type, "p", payload, "c", created_ms]].
Result<SessionFeedEvent> ParseFeedEntry(const Reply& entry, const Id& session) {
  if (entry.elements.size() != 2 || entry.elements[1].elements.size() != 6)
    return Corrupt("session feed entry");
  SessionFeedEvent e;
  e.session = session;
  e.position = entry.elements[0].str;
  LLMSYNC_ASSIGN_OR_RETURN(e.seq, ParseU64(e.position.substr(0, e.position.find('-'))));
  const std::vector<Reply>& f = entry.elements[1].elements;
  e.type = f[1].str;
  e.payload = f[3].str;
  return e;
}

}  // namespace

Result<SessionFeedEvent> RedisStore::PublishSessionEvent(const Id& session, std::uint64_t seq,
                                                         std::string_view type, std::string_view payload) {
  // Not through the event writer: a publish never waits on queued run events, so any thread may call it.
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Eval(Script::kPublishSessionEvent,
                                                  {session.ToHex(), std::to_string(seq), std::string(type),
                                                   std::string(payload), std::to_string(env_->UnixMillis())},
                                                  /*idempotent=*/false));
  SessionFeedEvent e;
  e.session = session;
  e.position = r.str;
  LLMSYNC_ASSIGN_OR_RETURN(e.seq, ParseU64(e.position.substr(0, e.position.find('-'))));
  e.type = std::string(type);
  e.payload = std::string(payload);
  return e;
}

Result<std::string> RedisStore::SessionFeedEnd(const Id& session) {
  LLMSYNC_ASSIGN_OR_RETURN(Reply r,
                           client_->Command({"XREVRANGE", FeedKey(session), "+", "-", "COUNT", "1"}, true));
  if (r.elements.empty()) return std::string("0-0");
  if (r.elements[0].elements.empty()) return Corrupt("session feed entry");
  return r.elements[0].elements[0].str;
}

Result<std::vector<SessionFeedEvent>> RedisStore::WaitSessionEvents(
    const std::vector<SessionFeedCursor>& cursors, int timeout_ms) {
  std::vector<SessionFeedEvent> events;
  if (cursors.empty()) return events;
  std::vector<std::string> cmd = {"XREAD",  "COUNT", "1000", "BLOCK", std::to_string(std::max(1, timeout_ms)),
                                  "STREAMS"};
  for (const SessionFeedCursor& c : cursors) cmd.push_back(FeedKey(c.session));
  for (const SessionFeedCursor& c : cursors) cmd.push_back(c.after.empty() ? "0-0" : c.after);
  LLMSYNC_ASSIGN_OR_RETURN(Reply r, client_->Command(cmd, true));
  for (const Reply& stream : r.elements) {
    if (stream.elements.size() != 2) return Corrupt("XREAD reply");
    const std::string& key = stream.elements[0].str;
    if (key.size() < kFeedPrefix.size() + kFeedSuffix.size()) return Corrupt("XREAD reply");
    LLMSYNC_ASSIGN_OR_RETURN(
        Id session,
        ParseIdArg(key.substr(kFeedPrefix.size(), key.size() - kFeedPrefix.size() - kFeedSuffix.size())));
    for (const Reply& entry : stream.elements[1].elements) {
      LLMSYNC_ASSIGN_OR_RETURN(SessionFeedEvent e, ParseFeedEntry(entry, session));
      events.push_back(std::move(e));
    }
  }
  return events;
}

}  // namespace llmsync::store::redis
