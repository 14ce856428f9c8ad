// `llmsync serve`: runs the server until SIGINT or SIGTERM, then shuts down gracefully.
#include <csignal>
#include <iostream>

#include "api/llmsync_server.h"
#include "base/logging.h"
#include "cli/commands.h"
#include "remote/http_remote_engine.h"
#include "remote/upstream_pool.h"

namespace llmsync::cli {
namespace {

struct ServeFlags {
  std::string listen;
  std::string model;
  std::string db;
  std::string store;
  std::string seal_key_file;
  std::string role;
  std::int64_t run_lease_ms = 0;
  std::string dispatch;
  std::int64_t dispatch_queue_bound = -1;
  std::int64_t dispatch_grace_ms = -1;
  std::string data_dir;
  std::string snapshot_dir;
  std::string config;
  std::int64_t kv_ram_mb = 0;
  std::int64_t kv_disk_mb = -1;
  int threads = 0;
  std::string log_level = "info";
  bool no_access_log = false;
  std::vector<std::string> engine_urls;
  std::string engine_key;
};

int RunServe(const ServeFlags& f) {
  auto level = ParseLogLevel(f.log_level);
  if (!level.IsOk()) {
    std::cerr << "llmsync serve: " << level.GetStatus().Message() << "\n";
    return 2;
  }
  SetLogLevel(*level);
  Env* env = Env::Default();
  api::ServerConfig config;
  if (!f.config.empty()) {
    Status s = api::LoadConfigFile(env, f.config, &config);
    if (!s.IsOk()) {
      std::cerr << "llmsync serve: " << s.Message() << "\n";
      return 2;
    }
  }
  if (!f.listen.empty()) config.listen = f.listen;
  if (!f.model.empty()) config.model_path = f.model;
  if (!f.db.empty()) config.db_path = f.db;
  if (!f.store.empty()) config.store = f.store;
  if (!f.seal_key_file.empty()) config.seal_key_file = f.seal_key_file;
  if (!f.role.empty()) config.role = f.role;
  if (f.run_lease_ms > 0) config.run_lease_ms = f.run_lease_ms;
  if (!f.dispatch.empty()) config.dispatch = f.dispatch;
  if (f.dispatch_queue_bound >= 0) config.dispatch_queue_bound = f.dispatch_queue_bound;
  if (f.dispatch_grace_ms >= 0) config.dispatch_grace_ms = f.dispatch_grace_ms;
  if (!f.data_dir.empty()) config.data_dir = f.data_dir;
  if (!f.snapshot_dir.empty()) config.snapshot_dir = f.snapshot_dir;
  if (f.kv_ram_mb > 0) config.kv_ram_mb = f.kv_ram_mb;
  if (f.kv_disk_mb >= 0) config.kv_disk_mb = f.kv_disk_mb;
  if (f.threads > 0) config.engine_threads = f.threads;
  if (f.no_access_log) config.access_log = false;
  if (config.model_path.empty()) std::cerr << api::kDemoModelNotice << "\n";
  for (const std::string& url : f.engine_urls) {
    auto parsed = remote::ParseUpstreamUrl(url);
    if (!parsed.IsOk()) {
      std::cerr << "llmsync serve: --engine-url: " << parsed.GetStatus().Message() << "\n";
      return 2;
    }
  }
  config.engine_urls = f.engine_urls;
  api::RemoteEngineFactory remote_engine = [urls = f.engine_urls,
                                            key = f.engine_key](const text::Tokenizer& tokenizer) {
    remote::HttpRemoteOptions options;
    options.urls = urls;
    options.api_key = key;
    return remote::MakeHttpRemoteEngine(options, &tokenizer);
  };

  // Block the signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = api::LlmsyncServer::Open(config, env, remote_engine);
  if (!server.IsOk()) {
    std::cerr << "llmsync serve: " << server.GetStatus().ToString() << "\n";
    return 1;
  }
  Status started = (*server)->Start();
  if (!started.IsOk()) {
    std::cerr << "llmsync serve: " << started.ToString() << "\n";
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  LLMSYNC_LOG(kInfo) << "received " << (sig == SIGTERM ? "SIGTERM" : "SIGINT") << ", shutting down";
  (*server)->Stop();
  return 0;
}

}  // namespace

void AddServeCommands(CLI::App& app, CliState& state) {
  auto flags = std::make_shared<ServeFlags>();
  const api::ServerConfig d;  // the defaults the help shows are the ones in force
  CLI::App* serve = app.add_subcommand("serve", "Run the llmsync server");
  serve->add_option("--listen", flags->listen, "HOST:PORT to listen on (default " + d.listen + ")");
  serve->add_option("--model", flags->model,
                    "GGUF model file (default: the demo model, random weights, made once under DATA_DIR)");
  serve->add_option("--db", flags->db, "SQLite database file (default DATA_DIR/llmsync.sqlite)");
  serve->add_option(
      "--store", flags->store,
      "sqlite:PATH (the default, at --db) or redis://HOST[:PORT][/DB] (shared by many processes)");
  serve->add_option(
      "--seal-key-file", flags->seal_key_file,
      "File with the hex key that seals hidden nodes; give every process sharing a store the same "
      "(default DATA_DIR/seal.key, made on first start)");
  serve->add_option("--role", flags->role,
                    "all (default), api (HTTP, records runs) or engine (executes runs); api and engine need "
                    "--store redis://");
  serve
      ->add_option("--run-lease-ms", flags->run_lease_ms,
                   "With a shared store: a run's claim lasts this long unrenewed (default " +
                       std::to_string(d.run_lease_ms) + ")")
      ->check(CLI::PositiveNumber);
  serve->add_option(
      "--dispatch", flags->dispatch,
      "With a shared store: how a run picks its engine process: cache_aware (the engine holding "
      "its prefix; default) or round_robin");
  serve->add_option("--dispatch-queue-bound", flags->dispatch_queue_bound,
                    "With cache_aware dispatch: runs queued at the prefix's engine beyond which the least "
                    "loaded engine takes a run and pays the prefill (default " +
                        std::to_string(d.dispatch_queue_bound) + ")");
  serve->add_option("--dispatch-grace-ms", flags->dispatch_grace_ms,
                    "With a shared store: other engines leave a run offered to a live engine alone this long "
                    "(default " +
                        std::to_string(d.dispatch_grace_ms) + ")");
  serve->add_option(
      "--data-dir", flags->data_dir,
      "Directory for the database, snapshots, keys and the process lock (default " + d.data_dir + ")");
  serve->add_option("--snapshot-dir", flags->snapshot_dir, "KV snapshot directory (default DATA_DIR/kv)");
  serve
      ->add_option("--kv-ram-mb", flags->kv_ram_mb,
                   "KV cache RAM budget in MiB (default " + std::to_string(d.kv_ram_mb) + ")")
      ->check(CLI::PositiveNumber);
  serve
      ->add_option("--kv-disk-mb", flags->kv_disk_mb,
                   "KV snapshot disk budget in MiB (default " + std::to_string(d.kv_disk_mb) + ")")
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--threads", flags->threads, "Engine threads (default: one per physical core)")
      ->check(CLI::PositiveNumber);
  serve->add_option("--config", flags->config,
                    "JSON config file: API keys, limits and every other setting; flags override it "
                    "(default: none; `llmsync config example` prints one with every default)");
  serve->add_option("--engine-url", flags->engine_urls,
                    "Run generation on an OpenAI-compatible upstream (llama-server, vLLM, SGLang, another "
                    "llmsync) at http://HOST:PORT; repeat for several. --model names the same model file "
                    "(its tokenizer and template stay here); default none: the local engine generates");
  serve->add_option("--engine-key", flags->engine_key,
                    "API key sent to every --engine-url upstream as Authorization: Bearer (vLLM or "
                    "llama-server --api-key, an llmsync with api_keys); default none");
  serve->add_option("--log-level", flags->log_level, "debug, info, warning or error (default info)");
  serve->add_flag("--no-access-log", flags->no_access_log,
                  "Do not log a line per request (default: logged at info; config key access_log)");
  serve->callback([flags, &state] { state.exit_code = RunServe(*flags); });

  CLI::App* config = GetOrAddSubcommand(app, "config", "Configuration files");
  CLI::App* example =
      config->add_subcommand("example", "Print a commented config file with every setting and its default");
  example->callback([&state] {
    std::cout << api::ExampleConfigFile();
    state.exit_code = 0;
  });
  CLI::App* check = config->add_subcommand("check", "Read a config file and check it as `serve` would");
  auto check_path = std::make_shared<std::string>();
  check->add_option("file", *check_path, "The JSON config file")->required();
  check->callback([check_path, &state] {
    api::ServerConfig config;
    Status s = api::LoadConfigFile(Env::Default(), *check_path, &config);
    if (s.IsOk()) s = api::FinalizeConfig(&config);
    if (!s.IsOk()) {
      std::cerr << "llmsync config check: " << s.Message() << "\n";
      state.exit_code = 1;
      return;
    }
    std::cout << *check_path << ": ok (listen " << config.listen << ", " << config.api_keys.size()
              << " API keys, data in " << config.data_dir << ")\n";
    state.exit_code = 0;
  });
}

}  // namespace llmsync::cli
