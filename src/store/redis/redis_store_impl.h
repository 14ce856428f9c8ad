// The RedisStore class behind OpenRedisStore, shared by redis_store.cpp (open, sessions, nodes)
// and redis_runs.cpp (runs, events and the event writer thread), with the helpers that turn
// records into script arguments and script replies back into records. Private to src/store/.
//
// Thread safety: as Store. Calls run on the caller's thread over a pooled connection, except event
// appends, which one writer thread sends in batches (one script call for everything queued).
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/redis/redis_client.h"
#include "store/redis/redis_store.h"

namespace llmsync::store::redis {

// "" for the zero id, else its hex.
std::string IdArg(const Id& id);
Result<Id> ParseIdArg(const std::string& s);
Result<std::uint64_t> ParseU64(const std::string& s);
Result<std::int64_t> ParseI64(const std::string& s);
std::string EncodeTokens(const TokenIds& tokens);
Result<TokenIds> DecodeTokens(const std::string& s);
// Reads a node row (the id and kNodeFieldCount fields) starting at elements[at].
Result<NodeRecord> ParseNode(const std::vector<Reply>& elements, std::size_t at);
// Reads a session row (kSessionFieldCount fields) starting at elements[at].
Result<SessionRecord> ParseSession(const std::vector<Reply>& elements, std::size_t at);
// Reads a run row (the id and kRunFieldCount fields) starting at elements[at].
Result<RunRecord> ParseRun(const std::vector<Reply>& elements, std::size_t at);

class RedisStore final : public Store {
 public:
  RedisStore(RedisStoreOptions options, std::unique_ptr<RedisClient> client);
  ~RedisStore() override;

  Status CreateSession(const SessionRecord& session) override;
  Result<SessionRecord> GetSession(std::string_view tenant, const Id& session) override;
  Result<std::vector<SessionRecord>> ListSessions(std::string_view tenant, std::size_t limit) override;
  Result<SessionRecord> SetSessionMetadata(std::string_view tenant, const Id& session,
                                           std::string_view metadata) override;
  Status DeleteSession(std::string_view tenant, const Id& session) override;
  Result<SessionRecord> AdminFindSession(const Id& session) override;

  Result<AppendOutcome> Append(const AppendBatch& batch, Id* conflict_head) override;
  Result<SessionRecord> SetHead(std::string_view tenant, const Id& session, const Id& node,
                                const std::optional<Id>& expect_head, Id* conflict_head) override;
  Result<NodeRecord> GetNode(std::string_view tenant, const Id& session, const Id& node) override;
  Result<std::vector<NodeRecord>> GetPath(std::string_view tenant, const Id& session,
                                          const Id& node) override;
  Result<SessionChanges> ChangesSince(std::string_view tenant, const Id& session, std::uint64_t since_seq,
                                      std::size_t limit) override;
  Result<std::vector<BranchTip>> ListBranchTips(std::string_view tenant, const Id& session,
                                                std::size_t limit) override;
  Result<std::uint64_t> PurgeHidden(const std::optional<std::string>& tenant,
                                    std::int64_t created_before_ms) override;
  Status RestoreContent(std::string_view tenant, const Id& session, const Id& node, std::string_view text,
                        const TokenIds& tokens, std::string_view sealed) override;
  Status LoadSession(const SessionRecord& session, const std::vector<NodeRecord>& nodes) override;
  Result<std::uint64_t> PruneIdempotency(std::int64_t created_before_ms) override;
  Result<std::uint64_t> PruneRunEvents(std::int64_t finished_before_ms) override;
  Status DeleteRun(std::string_view tenant, const Id& run) override;

  Status CreateRun(const RunRecord& run) override;
  Result<RunRecord> GetRun(std::string_view tenant, const Id& run) override;
  Result<RunRecord> UpdateRun(std::string_view tenant, const Id& run, const RunUpdate& update) override;
  Result<std::vector<RunRecord>> ListRuns(const RunFilter& filter) override;
  Result<std::vector<std::uint64_t>> AppendRunEvents(const std::vector<RunEventDraft>& events) override;
  void AppendRunEventsAsync(std::vector<RunEventDraft> events, EventsDone done) override;
  Result<std::vector<RunEvent>> ReadRunEvents(std::string_view tenant, const Id& run,
                                              std::uint64_t after_event_id, std::size_t limit) override;

  Result<std::vector<RunEvent>> WaitRunEvents(const std::vector<RunCursor>& cursors, int timeout_ms) override;
  Result<std::uint64_t> LeaseRun(const Id& run, const std::string& worker, std::int64_t ttl_ms,
                                 std::uint64_t epoch) override;
  Result<std::string> RunWorker(const Id& run) override;

  Status PublishEngine(const EngineBeat& beat) override;
  Status RetireEngine(const std::string& worker) override;
  Result<RunPlacement> DispatchRun(const DispatchRequest& request) override;
  Status WithdrawDispatch(const Id& run) override;
  Result<RunPlacement> GetRunPlacement(const Id& run) override;
  Status PinSession(const Id& session, const std::string& worker, std::int64_t ttl_ms) override;
  Status UnpinSession(const Id& session, const std::string& worker) override;

  bool SharesSessionEvents() const override { return true; }
  Result<SessionFeedEvent> PublishSessionEvent(const Id& session, std::uint64_t seq, std::string_view type,
                                               std::string_view payload) override;
  Result<std::string> SessionFeedEnd(const Id& session) override;
  Result<std::vector<SessionFeedEvent>> WaitSessionEvents(const std::vector<SessionFeedCursor>& cursors,
                                                          int timeout_ms) override;

 private:
  // kInternal on the event writer thread: a blocking write there would wait on itself.
  Status CheckNotWriter() const;
  Result<Reply> Write(Script script, const std::vector<std::string>& args);
  Result<Reply> Read(Script script, const std::vector<std::string>& args);
  Result<std::uint64_t> Count(Script script, const std::vector<std::string>& args);

  struct Submission {
    std::vector<RunEventDraft> events;
    EventsDone done;
  };
  void WriterLoop();
  void Flush(std::vector<Submission>& batch);

  const RedisStoreOptions options_;
  Env* const env_;
  std::unique_ptr<RedisClient> client_;

  std::mutex mu_;
  std::condition_variable work_;
  std::condition_variable room_;
  std::deque<Submission> pending_;  // GUARDED_BY(mu_)
  std::size_t pending_events_ = 0;  // GUARDED_BY(mu_)
  bool stopping_ = false;           // GUARDED_BY(mu_)
  std::thread writer_;
};

}  // namespace llmsync::store::redis
