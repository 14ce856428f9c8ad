#include "api/llmsync_server.h"

#include <unistd.h>

#include "api/compaction.h"
#include "api/edge_policy.h"
#include "api/http/access_log.h"
#include "api/http/http_server.h"
#include "api/json_codec.h"
#include "api/native/native_api.h"
#include "api/openai/openai_api.h"
#include "api/openai/openai_schema.h"
#include "api/session_events.h"
#include "api/web_assets.h"
#include "base/dir_lock.h"
#include "base/logging.h"
#include "base/sha256.h"
#include "engine/cpu_topology.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/make_test_model.h"
#include "engine/matmul.h"
#include "engine/model_fingerprint.h"
#include "engine/readable_vocab.h"
#include "store/open_store.h"
#include "store/retention.h"

namespace llmsync::api {

struct LlmsyncServer::Parts {
  std::unique_ptr<DirLock> data_dir_lock;  // first: released after everything else has shut down
  ServerConfig config;
  Env* env = nullptr;
  MetricsRegistry metrics;
  std::unique_ptr<engine::Model> model;
  std::unique_ptr<engine::Engine> engine;
  std::unique_ptr<text::Tokenizer> tokenizer;
  std::unique_ptr<runs::Conversation> conversation;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<store::RetentionJanitor> janitor;  // declared after store: stops before it closes
  std::unique_ptr<session::SessionService> sessions;
  std::unique_ptr<kvcache::KvManager> kv;
  std::unique_ptr<runs::EventHub> hub;
  CompactionsAhead compactions_ahead;          // outlives the scheduler: summary runs end on its thread
  std::unique_ptr<runs::RemoteEngine> remote;  // --engine-url; outlives the scheduler (reset first)
  std::unique_ptr<runs::RunScheduler> scheduler;
  std::unique_ptr<SessionEventBus> session_events;  // after store and scheduler: runs publish to it
  ServerContext ctx;
  Router router;
  std::unique_ptr<EdgePolicy> edge;  // before http: the handler points at it
  RequestHandler handler;            // what http serves, and Handle() calls
  std::unique_ptr<HttpServer> http;
  std::int64_t max_context = 0;   // in force: the config's, capped by the model's
  std::string store_description;  // "sqlite PATH" or "redis HOST:PORT/DB"
  std::string worker_id;          // with a shared store: host:pid, the name runs record
  std::string template_source;    // where the chat template came from, for the startup log
  bool started = false;
};

namespace {

// Whether `path` is a demo model of the current vocabulary (older ones had a byte vocabulary).
bool IsCurrentDemoModel(Env* env, const std::string& path) {
  auto file = engine::GgufFile::Open(env, path);
  if (!file.IsOk()) return false;
  auto tag = (*file)->GetString("llmsync.test_vocab");
  return tag.IsOk() && *tag == engine::kReadableVocabTag;
}

}  // namespace

Status EnsureDemoModel(Env* env, const std::string& path) {
  if (env->FileExists(path) && IsCurrentDemoModel(env, path)) return Status::Ok();
  LLMSYNC_RETURN_IF_ERROR(env->CreateDirs(DirName(path)));
  engine::MakeTestModelOptions options;
  options.arch = engine::ModelArch::kLlama;
  options.n_embd = 256;
  options.n_layer = 4;
  options.n_head = 8;
  options.n_head_kv = 4;
  options.n_ff = 512;
  options.type = engine::GgmlType::kQ8_0;
  options.seed = 42;
  options.readable_vocab = true;
  options.context_length = 16384;  // room for `llmsync demo`'s long agent session
  LLMSYNC_LOG(kInfo) << "no --model given: generating a demo model (random weights, readable vocabulary) at "
                     << path;
  return engine::MakeTestModel(env, options, path);
}

namespace {

Result<session::SealKey> LoadOrCreateSealKey(Env* env, const ServerConfig& config) {
  if (!config.seal_key_hex.empty()) return session::SealKey::FromHex(config.seal_key_hex);
  if (!config.seal_key_file.empty()) {
    Result<std::string> hex = env->ReadFile(config.seal_key_file);
    if (!hex.IsOk()) return hex.GetStatus().WithContext("read --seal-key-file");
    while (!hex->empty() && (hex->back() == '\n' || hex->back() == ' ')) hex->pop_back();
    return session::SealKey::FromHex(*hex);
  }
  std::string path = JoinPath(config.data_dir, "seal.key");
  if (env->FileExists(path)) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string hex, env->ReadFile(path));
    while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) hex.pop_back();
    return session::SealKey::FromHex(hex);
  }
  session::SealKey key = session::SealKey::Random();
  LLMSYNC_RETURN_IF_ERROR(WriteFileAtomically(env, path, key.ToHex() + "\n"));
  LLMSYNC_LOG(kInfo) << "generated a seal key for hidden nodes at " << path;
  return key;
}

Id SessionSecret(const session::SealKey& key) {
  Sha256 h;
  h.Update(std::string_view("llmsync/session-secret/v1"));
  h.Update(std::span<const std::uint8_t>(key.Bytes()));
  return Id(h.Finish());
}

// The access log's view of a request: its route, tenant and run.
AccessInfo DescribeRequest(const Router& router, const ServerConfig& config, const HttpRequest& r) {
  AccessInfo info;
  PathParams params;
  info.path_template = router.Template(r, &params);
  if (auto tenant = Authenticate(config, r); tenant.IsOk()) info.tenant = *tenant;
  if (info.path_template.starts_with("/v1/runs/{id}")) info.run_id = params["id"];
  if (info.path_template.starts_with("/v1/responses/{id}"))
    info.run_id = RunIdInBody("\"" + params["id"], false);
  return info;
}

}  // namespace

Result<std::unique_ptr<LlmsyncServer>> LlmsyncServer::Open(ServerConfig config, Env* env,
                                                           const RemoteEngineFactory& remote) {
  LLMSYNC_RETURN_IF_ERROR(FinalizeConfig(&config));
  auto p = std::make_unique<Parts>();
  p->config = std::move(config);
  p->env = env;
  ServerConfig& cfg = p->config;
  LLMSYNC_RETURN_IF_ERROR(env->CreateDirs(cfg.data_dir));
  LLMSYNC_ASSIGN_OR_RETURN(p->data_dir_lock, DirLock::Acquire(cfg.data_dir));
  if (cfg.model_path.empty()) {
    cfg.model_path = JoinPath(cfg.data_dir, "demo-model.gguf");
    LLMSYNC_RETURN_IF_ERROR(EnsureDemoModel(env, cfg.model_path));
  }

  // The api role never computes: it needs the tokenizer, the template and the fingerprint, not an
  // engine, and it keeps the weights out of memory (they stay mapped, never resident).
  const bool computes = cfg.role != "api";
  if (cfg.engine_threads == 0) cfg.engine_threads = engine::DefaultThreadCount();
  LLMSYNC_ASSIGN_OR_RETURN(p->model, engine::Model::Open(env, cfg.model_path,
                                                         computes ? engine::Model::Placement::kHugePageCopy
                                                                  : engine::Model::Placement::kMapped));
  if (computes) {
    engine::EngineOptions eo;
    eo.n_threads = cfg.engine_threads;
    LLMSYNC_ASSIGN_OR_RETURN(p->engine, engine::Engine::Create(*p->model, eo));
  }
  LLMSYNC_ASSIGN_OR_RETURN(p->tokenizer, text::LoadTokenizer(p->model->File()));
  std::optional<std::string> template_source;
  if (auto t = p->model->File().GetString("tokenizer.chat_template"); t.IsOk())
    template_source = std::string(*t);
  p->template_source = template_source ? "tokenizer.chat_template of the file" : "none in the file: ChatML";
  text::ChatTemplateOptions to;
  const text::SpecialTokens& specials = p->tokenizer->Specials();
  if (specials.bos) to.bos_token = std::string(p->tokenizer->TokenText(*specials.bos).ValueOr(""));
  if (specials.eos) to.eos_token = std::string(p->tokenizer->TokenText(*specials.eos).ValueOr(""));
  LLMSYNC_ASSIGN_OR_RETURN(text::ChatTemplate tmpl, text::ChatTemplate::ForModel(template_source, to));
  p->conversation = std::make_unique<runs::Conversation>(p->tokenizer.get(), std::move(tmpl));
  Id fingerprint =
      engine::ModelFingerprint(p->model->File(), cfg.engine_threads, /*release_pages=*/!computes);

  LLMSYNC_ASSIGN_OR_RETURN(store::StoreLocation where, store::ParseStoreLocation(cfg.store));
  LLMSYNC_ASSIGN_OR_RETURN(p->store, store::OpenStore(where, env, &p->metrics));
  p->store_description = store::DescribeStore(where);
  if (where.kind == store::StoreKind::kRedis && cfg.seal_key_hex.empty() && cfg.seal_key_file.empty()) {
    LLMSYNC_LOG(kWarning)
        << "a shared Redis store without --seal-key-file: sealed hidden nodes written by this "
           "process open only where "
        << JoinPath(cfg.data_dir, "seal.key") << " is";
  }
  store::RetentionPolicy retention;
  retention.event_retention_ms = cfg.event_retention_hours * 3600 * 1000;
  retention.idempotency_retention_ms = cfg.idempotency_retention_hours * 3600 * 1000;
  p->janitor = std::make_unique<store::RetentionJanitor>(p->store.get(), env, retention);
  session::SessionOptions sess;
  sess.limits.max_text_bytes = cfg.max_text_bytes;
  LLMSYNC_ASSIGN_OR_RETURN(session::SealKey key, LoadOrCreateSealKey(env, cfg));
  sess.seal_key = key;
  p->sessions = std::make_unique<session::SessionService>(p->store.get(), env, sess);

  kvcache::KvOptions ko;
  ko.model_fingerprint = fingerprint;
  ko.geometry = p->model->KvGeometryFor(engine::KvDtype::kF16);
  ko.ram_bytes = cfg.kv_ram_mb << 20;
  ko.snapshot_dir = cfg.snapshot_dir;
  ko.disk_bytes = cfg.kv_disk_mb << 20;
  ko.env = env;
  ko.metrics = &p->metrics;
  LLMSYNC_ASSIGN_OR_RETURN(p->kv, kvcache::KvManager::Open(ko));

  // With a shared store other processes write runs too: follow them, and claim runs under leases.
  const bool shared = where.kind == store::StoreKind::kRedis;
  p->hub = std::make_unique<runs::EventHub>(p->store.get(), /*follow_remote=*/shared);
  p->session_events = std::make_unique<SessionEventBus>(p->store.get());
  runs::SchedulerDeps deps;
  deps.engine = p->engine.get();
  deps.kv = p->kv.get();
  deps.conversation = p->conversation.get();
  deps.sessions = p->sessions.get();
  deps.store = p->store.get();
  deps.hub = p->hub.get();
  deps.codec = MakeEventCodec();
  deps.env = env;
  deps.metrics = &p->metrics;
  deps.constraint_factory = MakeConstraintFactory(*p->tokenizer);  // structured output
  if (!cfg.engine_urls.empty()) {
    // Generation on remote engines: the tree, runs and events stay here (runs/scheduler/remote_engine.h).
    if (!remote)
      return Status::InvalidArgument("engine URLs given, but this server has no remote engine adapter");
    LLMSYNC_ASSIGN_OR_RETURN(p->remote, remote(*p->tokenizer));
    LLMSYNC_LOG(kInfo) << "generation runs on remote engines: " << p->remote->Describe();
    deps.remote = p->remote.get();
  }
  deps.on_run_end = [bus = p->session_events.get()](const store::RunRecord& run) {
    Json out = {{"id", run.id.ToHex()},
                {"status", store::RunStatusName(run.status)},
                {"session", run.session.ToHex()},
                {"result_node", run.result_node.IsZero() ? Json(nullptr) : Json(run.result_node.ToHex())}};
    bus->Publish(run.session, 0, "run.finished", DumpJson(out));
  };
  runs::SchedulerOptions sched;
  sched.max_active_runs = cfg.max_active_runs;
  sched.max_queued_runs = static_cast<std::size_t>(cfg.max_queued_runs);
  // The context in force: the configured one, capped by the model's when it declares one.
  const std::int64_t n_ctx = p->model->Hparams().n_ctx_train;
  p->max_context = n_ctx > 0 ? std::min<std::int64_t>(cfg.max_context, n_ctx) : cfg.max_context;
  sched.max_context = p->max_context;
  sched.limits.max_tokens = cfg.max_tokens;
  if (shared) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    sched.worker_id = std::string(host) + ":" + std::to_string(::getpid());
    sched.execute = cfg.role != "api";
    sched.lease_ms = cfg.run_lease_ms;
    sched.scan_ms = std::max<std::int64_t>(50, cfg.run_lease_ms / 6);
    sched.dispatch =
        cfg.dispatch == "round_robin" ? store::DispatchMode::kRoundRobin : store::DispatchMode::kCacheAware;
    sched.dispatch_queue_bound = static_cast<std::uint64_t>(cfg.dispatch_queue_bound);
    sched.dispatch_grace_ms = cfg.dispatch_grace_ms;
    p->worker_id = sched.worker_id;
  }
  p->scheduler = std::make_unique<runs::RunScheduler>(deps, sched);

  ServerContext& ctx = p->ctx;
  ctx.config = &p->config;
  ctx.env = env;
  ctx.metrics = &p->metrics;
  ctx.model = p->model.get();
  ctx.model_name = std::string(p->model->File().GetString("general.name").ValueOr("llmsync-model"));
  ctx.model_fingerprint = fingerprint;
  ctx.session_secret = SessionSecret(key);
  ctx.conversation = p->conversation.get();
  ctx.store = p->store.get();
  ctx.sessions = p->sessions.get();
  ctx.kv = p->kv.get();
  ctx.hub = p->hub.get();
  ctx.scheduler = p->scheduler.get();
  ctx.max_context = p->max_context;
  ctx.session_events = p->session_events.get();
  ctx.compactions_ahead = &p->compactions_ahead;
  AddSessionRoutes(p->router, ctx);
  AddRunRoutes(p->router, ctx);
  AddAdminRoutes(p->router, ctx);
  AddOpenAiRoutes(p->router, ctx);
  AddWebRoutes(p->router);

  HttpServerOptions ho;
  ho.host = cfg.Host();
  ho.port = cfg.Port();
  ho.threads = cfg.http_threads;
  ho.max_body_bytes = cfg.max_body_bytes;
  ho.max_connections = static_cast<std::size_t>(cfg.max_connections);
  ho.header_timeout = std::chrono::milliseconds(cfg.header_timeout_ms);
  ho.idle_timeout = std::chrono::milliseconds(cfg.idle_timeout_ms);
  ho.metrics = &p->metrics;
  Router* router = &p->router;
  p->edge = std::make_unique<EdgePolicy>(p->config);
  RequestHandler handler =
      WithEdgePolicy([router](const HttpRequest& r) { return router->Route(r); }, p->edge.get());
  if (cfg.access_log) {
    const ServerConfig* config = &p->config;
    handler = WithAccessLog(std::move(handler), [router, config](const HttpRequest& r) {
      return DescribeRequest(*router, *config, r);
    });
  }
  p->handler = handler;
  p->http = std::make_unique<HttpServer>(ho, std::move(handler));
  return std::make_unique<LlmsyncServer>(std::move(p));
}

LlmsyncServer::LlmsyncServer(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

LlmsyncServer::~LlmsyncServer() {
  Stop();
  if (!parts_) return;
  // Teardown order (issue 17: ASan saw EventHub::Publish from the store's writer thread after the
  // hub was gone). Whatever calls into a part stops before the part is destroyed: HTTP (requests),
  // then the scheduler (its Stop drains the store's queued event writes) and the janitor, then the
  // hub (its follower thread reads the store), and the store last of the running parts.
  Parts& p = *parts_;
  p.http.reset();
  p.scheduler.reset();
  if (p.janitor) p.janitor->Stop();
  p.hub.reset();
  p.session_events.reset();  // its follower thread reads the store
  p.janitor.reset();
  p.kv.reset();
  p.sessions.reset();
  p.store.reset();
}

namespace {

// The engine in force (kernel set, threads against the machine's cores) and what the vocabulary
// makes of generation: the tokens that end it and the chat template's origin.
void LogEngineAndVocabulary(const LlmsyncServer::Parts& p) {
  if (p.engine) {
    const engine::CpuTopology cpus = engine::DetectCpuTopology(p.env, engine::AllowedCpus());
    LLMSYNC_LOG(kInfo) << "engine: kernel set " << engine::KernelIsaName(engine::ActiveKernelIsa()) << ", "
                       << p.engine->Threads() << " threads (" << cpus.physical_cores << " physical cores, "
                       << cpus.logical_cpus << " logical CPUs, from " << cpus.source << ")";
  } else {
    LLMSYNC_LOG(kInfo) << "engine: none in this process (role " << p.config.role << ")";
  }
  std::string stops;
  const text::Tokenizer& tok = *p.tokenizer;
  for (text::TokenId id : tok.GetVocab().EndOfGeneration()) {
    stops += (stops.empty() ? "" : ", ") + std::string(tok.TokenText(id).ValueOr("?")) + " (" +
             std::to_string(id) + ")";
  }
  LLMSYNC_LOG(kInfo) << "vocabulary: " << tok.VocabSize() << " tokens; generation stops at "
                     << (stops.empty() ? std::string("no token (max_tokens only)") : stops)
                     << "; chat template: " << p.template_source;
}

}  // namespace

Status LlmsyncServer::Start() {
  Parts& p = *parts_;
  LogEngineAndVocabulary(p);  // before /healthz answers: tests read it once the server is up
  LLMSYNC_RETURN_IF_ERROR(p.scheduler->Start());
  Status s = p.http->Start();
  if (!s.IsOk()) {
    p.scheduler->Stop();
    return s;
  }
  p.started = true;
  p.janitor->Start();
  const engine::ModelHparams& hp = p.model->Hparams();
  const std::string url = "http://" + p.config.Host() + ":" + std::to_string(p.http->Port());
  LLMSYNC_LOG(kInfo) << "llmsync listening on " << url << " (OpenAI-compatible base URL " << url << "/v1)";
  LLMSYNC_LOG(kInfo) << "model: " << p.config.model_path << " (" << p.ctx.model_name << ", " << hp.n_layer
                     << " layers, n_embd " << hp.n_embd << ", vocab " << hp.n_vocab << ", fingerprint "
                     << p.ctx.model_fingerprint.ShortHex() << ")";
  LLMSYNC_LOG(kInfo) << "store: " << p.store_description << "; KV: " << p.config.kv_ram_mb << " MiB RAM, "
                     << p.config.kv_disk_mb << " MiB disk at " << p.config.snapshot_dir;
  LLMSYNC_LOG(kInfo) << "role: " << p.config.role
                     << (p.worker_id.empty() ? std::string(" (single process)")
                                             : "; worker " + p.worker_id + ", run lease " +
                                                   std::to_string(p.config.run_lease_ms) + " ms");
  LLMSYNC_LOG(kInfo) << "retention: events of finished runs " << p.config.event_retention_hours
                     << " h, idempotency keys " << p.config.idempotency_retention_hours << " h";
  LLMSYNC_LOG(kInfo) << "limits: context " << p.max_context << " tokens"
                     << (p.max_context < p.config.max_context ? " (the model's)" : "") << ", "
                     << p.config.max_active_runs << " concurrent runs, body " << p.config.max_body_bytes
                     << " bytes; auth: "
                     << (p.config.api_keys.empty() ? "none (single local tenant, loopback only)"
                                                   : std::to_string(p.config.api_keys.size()) + " API keys");
  return Status::Ok();
}

void LlmsyncServer::Stop() {
  if (!parts_ || !parts_->started) return;
  parts_->started = false;
  parts_->http->Stop();
  parts_->scheduler->Stop();
  parts_->janitor->Stop();
  LLMSYNC_LOG(kInfo) << "llmsync stopped";
}

std::uint16_t LlmsyncServer::Port() const { return parts_->http->Port(); }

HttpResponse LlmsyncServer::Handle(const HttpRequest& request) const { return parts_->handler(request); }

}  // namespace llmsync::api
