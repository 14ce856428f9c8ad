// `llmsync bench append`: the time to append N nodes in one request (freezing them: chat template
// rendering and tokenizing), against an embedded server (default) or a running one (--port).
// Prints JSON: nodes per append, milliseconds per repetition, the median and per-node cost, and
// the time an over-limit append takes to be refused. Issue 17 measured 13.5 s to refuse 1,100 nodes.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/env.h"
#include "base/logging.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "client/http_client.h"

namespace llmsync::cli {
namespace {

using Json = nlohmann::json;

struct AppendFlags {
  int nodes = 1000;
  int repetitions = 3;
  std::string model;
  int port = 0;  // 0: an embedded server
};

// Milliseconds for one POST of `nodes` nodes to a fresh session, and its HTTP status.
Result<std::pair<double, int>> TimeAppend(client::HttpClient& http, int nodes) {
  LLMSYNC_ASSIGN_OR_RETURN(client::HttpResult created, http.PostJson("/v1/sessions", "{}"));
  Json session = Json::parse(created.body, nullptr, false);
  if (created.status != 201 || !session.contains("id")) return Status::Internal("session: " + created.body);
  Json list = Json::array();
  for (int i = 0; i < nodes; ++i) {
    list.push_back({{"kind", i % 2 == 0 ? "user" : "assistant"},
                    {"text", "Message number " + std::to_string(i) + " of a long imported history."}});
  }
  std::string body = Json{{"nodes", list}}.dump();
  auto start = std::chrono::steady_clock::now();
  LLMSYNC_ASSIGN_OR_RETURN(
      client::HttpResult r,
      http.PostJson("/v1/sessions/" + session["id"].get<std::string>() + "/nodes", body));
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return std::make_pair(ms, r.status);
}

Result<Json> Measure(const AppendFlags& f, std::uint16_t port) {
  client::HttpClient http("127.0.0.1", port, std::chrono::seconds(600));
  Json runs = Json::array();
  std::vector<double> times;
  for (int i = 0; i < f.repetitions; ++i) {
    LLMSYNC_ASSIGN_OR_RETURN(auto t, TimeAppend(http, f.nodes));
    if (t.second != 201) return Status::Internal("the append got HTTP " + std::to_string(t.second));
    times.push_back(t.first);
    runs.push_back(t.first);
  }
  std::sort(times.begin(), times.end());
  double median = times[times.size() / 2];
  LLMSYNC_ASSIGN_OR_RETURN(auto refused, TimeAppend(http, 2000));
  return Json{{"nodes_per_append", f.nodes},
              {"append_ms", runs},
              {"median_ms", median},
              {"per_node_us", median * 1000.0 / f.nodes},
              {"refuse_2000_nodes_ms", refused.first},
              {"refuse_2000_nodes_status", refused.second}};
}

int RunAppend(const AppendFlags& f) {
  if (GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);
  Result<Json> report = Status::Internal("not run");
  if (f.port != 0) {
    report = Measure(f, static_cast<std::uint16_t>(f.port));
  } else {
    auto dir = MakeTempDir("bench-append");
    if (!dir.IsOk()) {
      std::cerr << "llmsync bench append: " << dir.GetStatus().ToString() << "\n";
      return 1;
    }
    EmbeddedOptions eo;
    eo.model_path = f.model.empty() ? DefaultDataDir() + "/models/demo.gguf" : f.model;
    Status demo = f.model.empty() ? api::EnsureDemoModel(Env::Default(), eo.model_path) : Status::Ok();
    eo.data_dir = *dir;
    auto server = demo.IsOk() ? EmbeddedServer::Start(eo) : Result<std::unique_ptr<EmbeddedServer>>(demo);
    report = server.IsOk() ? Measure(f, (*server)->Port()) : Result<Json>(server.GetStatus());
  }
  if (!report.IsOk()) {
    std::cerr << "llmsync bench append: " << report.GetStatus().ToString() << "\n";
    return 1;
  }
  std::cout << report->dump(2) << std::endl;
  return 0;
}

}  // namespace

void AddBenchAppendCommand(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks");
  auto f = std::make_shared<AppendFlags>();
  CLI::App* cmd = bench->add_subcommand("append", "Time to append (freeze) many nodes in one request");
  cmd->add_option("--nodes", f->nodes, "Nodes per append")->check(CLI::Range(1, 1024));
  cmd->add_option("--repetitions", f->repetitions, "Appends measured")->check(CLI::Range(1, 100));
  cmd->add_option("--model", f->model, "GGUF model (default: the demo model)");
  cmd->add_option("--port", f->port, "Bench a running server on 127.0.0.1:PORT instead")
      ->check(CLI::Range(1, 65535));
  cmd->callback([f, &state] { state.exit_code = RunAppend(*f); });
}

}  // namespace llmsync::cli
