#include "store/redis/redis_client.h"

#include <hiredis/hiredis.h>

#include <thread>
#include <utility>

#include "store/store.h"

namespace llmsync::store::redis {

namespace {

constexpr std::chrono::milliseconds kIdleCheckAfter{1000};

timeval ToTimeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

Reply Copy(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(Copy(r->element[i]));
      break;
    default: break;
  }
  return out;
}

bool StartsWith(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

struct RedisClient::Conn {
  Conn() = default;
  ~Conn() {
    if (ctx != nullptr) redisFree(ctx);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  redisContext* ctx = nullptr;
  std::chrono::steady_clock::time_point last_used;
};

Status StatusFromError(const std::string& error) {
  std::size_t space = error.find(' ');
  std::string code = error.substr(0, space);
  std::string message = space == std::string::npos ? "" : error.substr(space + 1);
  if (code == "NOTFOUND") return Status::NotFound(message);
  if (code == "CONFLICT") return Status::Conflict(message);
  if (code == "FENCED") return Status::Conflict(std::string(kLeaseLostPrefix) + message);
  if (code == "HEADCONFLICT") return Status::Conflict(std::string(kHeadConflictPrefix) + message);
  if (code == "EXISTS") return Status::AlreadyExists(message);
  if (code == "INVALID") return Status::InvalidArgument(message);
  if (code == "DATALOSS") return Status::DataLoss(message);
  if (code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "TRYAGAIN")
    return Status::Unavailable("redis: " + error);
  return Status::Internal("redis: " + error);
}

RedisClient::RedisClient(ClientOptions options) : options_(std::move(options)), shas_(kScriptCount) {}

RedisClient::~RedisClient() = default;

std::string RedisClient::Address() const {
  return options_.host + ":" + std::to_string(options_.port) + "/" + std::to_string(options_.db);
}

Result<RedisClient::ConnPtr> RedisClient::Connect() {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.reconnect_budget_ms);
  std::chrono::milliseconds backoff{20};
  std::string last_error;
  while (true) {
    auto conn = std::make_unique<Conn>();
    conn->ctx =
        redisConnectWithTimeout(options_.host.c_str(), options_.port, ToTimeval(options_.connect_timeout_ms));
    if (conn->ctx != nullptr && conn->ctx->err == 0) {
      redisSetTimeout(conn->ctx, ToTimeval(options_.command_timeout_ms));
      if (options_.db == 0) return conn;
      Result<Reply> selected = Send(*conn, {"SELECT", std::to_string(options_.db)});
      if (selected.IsOk()) return conn;
      if (selected.GetStatus().Code() != StatusCode::kUnavailable) {
        return Status::InvalidArgument("redis: SELECT " + std::to_string(options_.db) +
                                       " failed: " + selected.GetStatus().Message());
      }
      last_error = selected.GetStatus().Message();
    } else {
      last_error = conn->ctx != nullptr ? conn->ctx->errstr : "out of memory";
    }
    if (std::chrono::steady_clock::now() + backoff > deadline) break;
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(500));
  }
  return Status::Unavailable("redis at " + Address() + " is unavailable: " + last_error);
}

void RedisClient::DropIdle() {
  std::vector<ConnPtr> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  dropped.swap(idle_);
}

Result<RedisClient::ConnPtr> RedisClient::Acquire() {
  while (true) {
    ConnPtr conn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.empty()) break;
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    if (std::chrono::steady_clock::now() - conn->last_used < kIdleCheckAfter) return conn;
    Result<Reply> pong = Send(*conn, {"PING"});
    if (pong.IsOk()) return conn;
    DropIdle();  // one dead connection: the others are likely dead too
  }
  return Connect();
}

void RedisClient::Release(ConnPtr conn) {
  conn->last_used = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(conn));
}

Result<Reply> RedisClient::Send(Conn& conn, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* raw = static_cast<redisReply*>(
      redisCommandArgv(conn.ctx, static_cast<int>(args.size()), argv.data(), lens.data()));
  if (raw == nullptr) {
    return Status::Unavailable("redis at " + Address() + ": connection lost (" +
                               std::string(conn.ctx->errstr) + ")");
  }
  Reply reply = Copy(raw);
  bool error = raw->type == REDIS_REPLY_ERROR;
  freeReplyObject(raw);
  if (error) return StatusFromError(reply.str);
  return reply;
}

Result<Reply> RedisClient::RunOnce(const std::vector<std::string>& args, bool idempotent) {
  for (int attempt = 0;; ++attempt) {
    LLMSYNC_ASSIGN_OR_RETURN(ConnPtr conn, Acquire());
    Result<Reply> reply = Send(*conn, args);
    if (reply.IsOk() || conn->ctx->err == 0) {
      Release(std::move(conn));
      return reply;
    }
    conn.reset();
    DropIdle();
    if (!idempotent || attempt > 0) {
      return Status::Unavailable(reply.GetStatus().Message() +
                                 (idempotent ? "" : "; the write was applied completely or not at all"));
    }
  }
}

Result<Reply> RedisClient::Command(const std::vector<std::string>& args, bool idempotent) {
  return RunOnce(args, idempotent);
}

Result<Reply> RedisClient::Eval(Script script, const std::vector<std::string>& args, bool idempotent) {
  const int index = static_cast<int>(script);
  std::string sha;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sha = shas_[index];
  }
  if (sha.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(Reply loaded,
                             RunOnce({"SCRIPT", "LOAD", std::string(ScriptSource(script))}, true));
    sha = loaded.str;
    std::lock_guard<std::mutex> lock(mu_);
    shas_[index] = sha;
  }
  std::vector<std::string> call;
  call.reserve(args.size() + 3);
  call.push_back("EVALSHA");
  call.push_back(sha);
  call.push_back("0");
  call.insert(call.end(), args.begin(), args.end());
  Result<Reply> reply = RunOnce(call, idempotent);
  if (reply.IsOk() || !StartsWith(reply.GetStatus().Message(), "redis: NOSCRIPT")) return reply;
  call[0] = "EVAL";
  call[1] = std::string(ScriptSource(script));
  return RunOnce(call, idempotent);
}

}  // namespace llmsync::store::redis
