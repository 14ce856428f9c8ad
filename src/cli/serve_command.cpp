// `llmsync serve`: runs the server until SIGINT or SIGTERM, then shuts down gracefully.
#include <csignal>
#include <iostream>

#include "api/llmsync_server.h"
#include "base/logging.h"
#include "cli/commands.h"

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
  std::string data_dir;
  std::string snapshot_dir;
  std::string config;
  std::int64_t kv_ram_mb = 0;
  std::int64_t kv_disk_mb = -1;
  int threads = 0;
  std::string log_level = "info";
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
  if (!f.data_dir.empty()) config.data_dir = f.data_dir;
  if (!f.snapshot_dir.empty()) config.snapshot_dir = f.snapshot_dir;
  if (f.kv_ram_mb > 0) config.kv_ram_mb = f.kv_ram_mb;
  if (f.kv_disk_mb >= 0) config.kv_disk_mb = f.kv_disk_mb;
  if (f.threads > 0) config.engine_threads = f.threads;

  // Block the signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = api::LlmsyncServer::Open(config, env);
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
  CLI::App* serve = app.add_subcommand("serve", "Run the llmsync server");
  serve->add_option("--listen", flags->listen, "HOST:PORT to listen on (default 127.0.0.1:8420)");
  serve->add_option("--model", flags->model, "GGUF model file (default: a generated demo model)");
  serve->add_option("--db", flags->db, "SQLite database file (default DATA_DIR/llmsync.sqlite)");
  serve->add_option(
      "--store", flags->store,
      "sqlite:PATH (the default, at --db) or redis://HOST[:PORT][/DB] (shared by many processes)");
  serve->add_option(
      "--seal-key-file", flags->seal_key_file,
      "File with the hex key that seals hidden nodes; give every process sharing a store the same");
  serve->add_option("--role", flags->role,
                    "all (default), api (HTTP, records runs) or engine (executes runs); api and engine need "
                    "--store redis://");
  serve
      ->add_option("--run-lease-ms", flags->run_lease_ms,
                   "With a shared store: a run's claim lasts this long unrenewed (default 3000)")
      ->check(CLI::PositiveNumber);
  serve->add_option("--data-dir", flags->data_dir,
                    "Directory for the database, snapshots and keys (default data)");
  serve->add_option("--snapshot-dir", flags->snapshot_dir, "KV snapshot directory (default DATA_DIR/kv)");
  serve->add_option("--kv-ram-mb", flags->kv_ram_mb, "KV cache RAM budget in MiB")
      ->check(CLI::PositiveNumber);
  serve->add_option("--kv-disk-mb", flags->kv_disk_mb, "KV snapshot disk budget in MiB")
      ->check(CLI::NonNegativeNumber);
  serve->add_option("--threads", flags->threads, "Engine threads")->check(CLI::PositiveNumber);
  serve->add_option("--config", flags->config, "JSON config file (API keys, limits); flags override it");
  serve->add_option("--log-level", flags->log_level, "debug, info, warning or error");
  serve->callback([flags, &state] { state.exit_code = RunServe(*flags); });
}

}  // namespace llmsync::cli
