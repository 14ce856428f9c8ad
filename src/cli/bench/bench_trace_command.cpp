// `llmsync bench trace`: plays a seeded agent trace against (a) the native state-sync API,
// (b) llmsync's /v1/chat/completions used statelessly and (c) any OpenAI-compatible --target URL,
// and prints per-turn JSON (prefill computed, cache hit %, TTFT p50/p99, bytes sent), optionally
// plotted with gnuplot.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "base/env.h"
#include "base/logging.h"
#include "cli/bench/bench_trace.h"
#include "cli/client_util.h"
#include "cli/commands.h"
#include "runs/context_policy.h"

namespace llmsync::cli {
namespace {

using Json = nlohmann::json;

struct TraceFlags {
  TraceConfig trace;
  std::string model;
  std::string data_dir;
  std::int64_t kv_ram_mb = 4;
  int threads = 0;
  std::string target_url;
  std::string native_url;  // play the native target against this llmsync instead of an embedded one
  std::string target_model = "default";
  std::string targets = "native,openai";
  std::string plot;
  std::string out;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  std::size_t rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  return v[std::clamp<std::size_t>(rank, 1, v.size()) - 1];
}

double Round(double v) { return static_cast<double>(static_cast<std::int64_t>(v * 100.0 + 0.5)) / 100.0; }

// Plays the whole trace, sessions interleaved turn by turn, and reports it.
// Adds a sample's token and byte counts to a running sum (TTFTs are not summed).
void AddCounts(const TurnSample& s, TurnSample* sum) {
  sum->prompt_tokens += s.prompt_tokens;
  sum->cached_tokens += s.cached_tokens;
  sum->computed_tokens += s.computed_tokens;
  sum->generated_tokens += s.generated_tokens;
  sum->new_tokens += s.new_tokens;
  sum->bytes_sent += s.bytes_sent;
  sum->compacted = sum->compacted || s.compacted;
}

Json PlayTarget(TraceDriver& driver, const TraceConfig& config) {
  auto start = std::chrono::steady_clock::now();
  std::vector<std::vector<TurnSample>> by_turn(config.turns);
  std::set<std::string> cached_fields;  // where the cache figures came from
  for (int t = 0; t < config.turns; ++t) {
    for (int s = 0; s < config.sessions; ++s) {
      auto sample = driver.Turn(s, t, TraceMessage(config, s, t));
      if (!sample.IsOk()) {
        return {{"available", false},
                {"reason", "turn " + std::to_string(t) + " of session " + std::to_string(s) + ": " +
                               sample.GetStatus().ToString()}};
      }
      cached_fields.insert(sample->cached_field.empty() ? "none reported" : sample->cached_field);
      by_turn[t].push_back(*sample);
    }
  }
  double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  Json turns = Json::array();
  TurnSample total;
  std::int64_t new_after_first = 0;
  std::int64_t computed_after_first = 0;
  std::uint64_t cumulative_bytes = 0;
  for (int t = 0; t < config.turns; ++t) {
    TurnSample sum;
    std::vector<double> ttft;
    std::vector<double> server_ttft;
    for (const TurnSample& s : by_turn[t]) {
      AddCounts(s, &sum);
      ttft.push_back(s.ttft_ms);
      if (s.server_ttft_ms >= 0) server_ttft.push_back(s.server_ttft_ms);
    }
    cumulative_bytes += sum.bytes_sent;
    double hit = sum.prompt_tokens > 0
                     ? 100.0 * static_cast<double>(sum.cached_tokens) / static_cast<double>(sum.prompt_tokens)
                     : 0;
    turns.push_back({{"turn", t},
                     {"prompt_tokens", sum.prompt_tokens},
                     {"new_tokens", sum.new_tokens},
                     {"computed_tokens", sum.computed_tokens},
                     {"cached_tokens", sum.cached_tokens},
                     {"generated_tokens", sum.generated_tokens},
                     {"compacted", sum.compacted},
                     {"cache_hit_pct", Round(hit)},
                     {"ttft_ms_p50", Round(Percentile(ttft, 50))},
                     {"ttft_ms_p99", Round(Percentile(ttft, 99))},
                     {"bytes_sent", sum.bytes_sent},
                     {"bytes_sent_cumulative", cumulative_bytes}});
    // What the server itself measured: the difference to ttft_ms is the protocol's share.
    if (!server_ttft.empty()) turns.back()["server_ttft_ms_p50"] = Round(Percentile(server_ttft, 50));
    AddCounts(sum, &total);
    if (t > 0) {
      new_after_first += sum.new_tokens;
      computed_after_first += sum.computed_tokens;
    }
  }
  Json totals = {
      {"prompt_tokens", total.prompt_tokens},
      {"new_tokens", total.new_tokens},
      {"computed_tokens", total.computed_tokens},
      {"cached_tokens", total.cached_tokens},
      {"generated_tokens", total.generated_tokens},
      {"bytes_sent", total.bytes_sent},
      {"computed_over_new_after_turn_0", new_after_first > 0
                                             ? Round(static_cast<double>(computed_after_first) /
                                                     static_cast<double>(new_after_first) * 1000.0) /
                                                   1000.0
                                             : 0.0},
      {"wall_s", Round(wall_s)},
      // The response fields cached_tokens was read from ("none reported": computed =
      // prompt for those turns).
      {"cached_tokens_from", Json(std::vector<std::string>(cached_fields.begin(), cached_fields.end()))}};
  return {{"available", true}, {"per_turn", turns}, {"totals", totals}};
}

Status Plot(const Json& report, const std::string& png) {
  std::string dat = png + ".dat";
  std::ofstream out(dat);
  std::vector<std::string> names;
  for (const auto& [name, target] : report["targets"].items()) {
    if (!target.value("available", false)) continue;
    names.push_back(name);
    out << "# " << name << "\n";
    for (const Json& t : target["per_turn"]) {
      out << t["turn"].get<int>() << " " << t["ttft_ms_p50"].get<double>() << " "
          << t["bytes_sent"].get<std::uint64_t>() << "\n";
    }
    out << "\n\n";
  }
  out.close();
  if (names.empty()) return Status::InvalidArgument("no target produced data to plot");
  // noenhanced: target names hold underscores, which enhanced text would turn into subscripts.
  // Both plots start at 0, so a slope reads against the whole quantity.
  std::string script = "set terminal png noenhanced size 1100,450\nset output '" + png +
                       "'\nset multiplot layout 1,2\nset xlabel 'turn'\nset key left top\nset yrange [0:*]\n"
                       "set ylabel 'TTFT p50 (ms)'\nplot ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    script += (i ? ", " : "") + std::string("'") + dat + "' index " + std::to_string(i) +
              " using 1:2 with linespoints title '" + names[i] + "'";
  }
  script += "\nset ylabel 'bytes sent per turn (all sessions)'\nplot ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    script += (i ? ", " : "") + std::string("'") + dat + "' index " + std::to_string(i) +
              " using 1:3 with linespoints title '" + names[i] + "'";
  }
  script += "\nunset multiplot\n";
  std::string gp = png + ".gp";
  std::ofstream(gp) << script;
  std::string cmd = "gnuplot '" + gp + "'";
  if (std::system(cmd.c_str()) != 0) return Status::Internal("gnuplot failed: " + cmd);
  return Status::Ok();
}

int RunTrace(const TraceFlags& f) {
  if (GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);
  EmbeddedOptions eo;
  eo.model_path = f.model.empty() ? DefaultDataDir() + "/models/demo.gguf" : f.model;
  if (f.model.empty()) {
    Status s = api::EnsureDemoModel(Env::Default(), eo.model_path);
    if (!s.IsOk()) {
      std::cerr << "llmsync bench trace: " << s.ToString() << "\n";
      return 1;
    }
  }
  eo.kv_ram_mb = f.kv_ram_mb;
  eo.engine_threads = f.threads;
  eo.max_context = f.trace.max_context;
  auto dir = f.data_dir.empty() ? MakeTempDir("bench-trace") : Result<std::string>(f.data_dir);
  if (!dir.IsOk()) {
    std::cerr << "llmsync bench trace: " << dir.GetStatus().ToString() << "\n";
    return 1;
  }
  // Each built-in target gets a fresh server: a warm cache left by one target must not serve another.
  auto play_local = [&](const std::string& name, const auto& make_driver) -> Json {
    eo.data_dir = *dir + "/" + name;
    auto server = EmbeddedServer::Start(eo);
    if (!server.IsOk()) return {{"available", false}, {"reason", server.GetStatus().ToString()}};
    client::ClientOptions local;
    local.port = (*server)->Port();
    return PlayTarget(*make_driver(local), f.trace);
  };
  const TraceConfig& c = f.trace;
  Json report = {{"benchmark", "trace"},
                 {"config",
                  {{"sessions", c.sessions},
                   {"turns", c.turns},
                   {"message_tokens", c.message_tokens},
                   {"generate_tokens", c.generate_tokens},
                   {"seed", c.seed},
                   {"context_policy", c.context_policy},
                   {"context_budget", c.context_budget},
                   {"context_target", c.context_target},
                   {"max_context", c.max_context},
                   {"kv_ram_mb", f.kv_ram_mb},
                   {"model", f.model.empty() ? "demo" : f.model}}},
                 {"targets", Json::object()}};
  if (!f.native_url.empty()) {
    // An llmsync already running, e.g. the api process in front of several engine processes
    // (bench/dispatch_bench.sh): its cache account is the engines'.
    client::ClientOptions external;
    Status s = client::ParseServerUrl(f.native_url, &external);
    report["targets"]["native"] = s.IsOk() ? PlayTarget(*MakeNativeDriver(external, c), c)
                                           : Json{{"available", false}, {"reason", s.Message()}};
    report["targets"]["native"]["url"] = f.native_url;
    report["config"]["model"] = "the server's at " + f.native_url;  // not the embedded server's
    report["config"]["kv_ram_mb"] = nullptr;
  } else if (f.targets.find("native") != std::string::npos) {
    report["targets"]["native"] =
        play_local("native", [&](const client::ClientOptions& o) { return MakeNativeDriver(o, c); });
  }
  if (f.targets.find("openai") != std::string::npos) {
    OpenAiDriverOptions openai;
    openai.local = true;
    openai.server_policy = true;  // with --context-policy: llmsync compacts, the client re-sends all
    Json r =
        play_local("openai", [&](const client::ClientOptions& o) { return MakeOpenAiDriver(o, openai, c); });
    if (!r.value("available", false))
      r["reason"] = "llmsync /v1/chat/completions not available: " + r.value("reason", "");
    report["targets"]["llmsync_chat_completions_stateless"] = r;
  }
  if (f.targets.find("client-truncation") != std::string::npos) {
    // The baseline: no server policy, the client drops its oldest turns to stay under the budget
    // llmsync's policy would use.
    OpenAiDriverOptions openai;
    openai.local = true;
    runs::ContextPolicy policy;
    policy.budget_tokens = c.context_budget;
    openai.client_budget = c.max_context > 0 ? runs::EffectiveBudget(policy, c.max_context) : 0;
    Json r = openai.client_budget > 0
                 ? play_local("client-truncation",
                              [&](const client::ClientOptions& o) { return MakeOpenAiDriver(o, openai, c); })
                 : Json{{"available", false}, {"reason", "client-truncation needs --max-context"}};
    report["targets"]["llmsync_chat_completions_client_truncation"] = r;
  }
  if (!f.target_url.empty()) {
    client::ClientOptions remote;
    Status s = client::ParseServerUrl(f.target_url, &remote);
    std::string path = "/v1/chat/completions";
    std::string_view rest = f.target_url;
    if (auto scheme = rest.find("://"); scheme != std::string_view::npos) rest.remove_prefix(scheme + 3);
    if (auto slash = rest.find('/'); slash != std::string_view::npos && slash + 1 < rest.size()) {
      path = std::string(rest.substr(slash));
    }
    OpenAiDriverOptions openai;
    openai.path = path;
    openai.model = f.target_model;
    report["targets"]["target"] = s.IsOk() ? PlayTarget(*MakeOpenAiDriver(remote, openai, c), c)
                                           : Json{{"available", false}, {"reason", s.Message()}};
    report["targets"]["target"]["url"] = f.target_url;
  }
  std::string text = report.dump(2);
  if (!f.out.empty()) std::ofstream(f.out) << text << "\n";
  std::cout << text << std::endl;
  if (!f.plot.empty()) {
    Status s = Plot(report, f.plot);
    if (!s.IsOk()) {
      std::cerr << "llmsync bench trace: " << s.Message() << "\n";
      return 1;
    }
  }
  return report["targets"].contains("native") && !report["targets"]["native"].value("available", false) ? 1
                                                                                                        : 0;
}

}  // namespace

void AddBenchTraceCommand(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks");
  auto f = std::make_shared<TraceFlags>();
  CLI::App* cmd = bench->add_subcommand("trace", "Synthetic agent trace: state sync vs stateless resend");
  cmd->add_option("--sessions", f->trace.sessions, "Sessions (S)")->check(CLI::Range(1, 10000));
  cmd->add_option("--turns", f->trace.turns, "Turns per session (T)")->check(CLI::Range(1, 10000));
  cmd->add_option("--message-tokens", f->trace.message_tokens,
                  "Bytes per appended message (K; one token per byte on byte-vocabulary models)")
      ->check(CLI::Range(8, 100000));
  cmd->add_option("--generate", f->trace.generate_tokens, "Tokens generated per turn (G)")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--seed", f->trace.seed, "Trace seed");
  cmd->add_option("--context-policy", f->trace.context_policy,
                  "Context policy past the context: auto | truncate (default: none); native sessions "
                  "get it as their policy, chat completions as llmsync.context");
  cmd->add_option("--context-target", f->trace.context_target,
                  "Tokens a compaction aims for (default: an eighth of the budget)");
  cmd->add_option("--context-budget", f->trace.context_budget,
                  "Prompt + generation budget of the policy (default: the server's, the context less "
                  "room for a summary run)");
  cmd->add_option("--max-context", f->trace.max_context,
                  "The server's context in tokens (default: the model's)");
  cmd->add_option("--model", f->model, "GGUF model for the embedded server (default: the demo model)");
  cmd->add_option("--data-dir", f->data_dir, "Server data directory (default: a fresh temp directory)");
  cmd->add_option("--kv-ram-mb", f->kv_ram_mb, "KV RAM budget: keep it below what all sessions need")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", f->threads, "Engine threads")->check(CLI::PositiveNumber);
  cmd->add_option("--targets", f->targets,
                  "Built-in targets to run: native, openai, client-truncation (comma-separated)");
  cmd->add_option("--target", f->target_url,
                  "Also drive this OpenAI-compatible URL (http://HOST:PORT[/path])");
  cmd->add_option("--target-model", f->target_model, "Model name sent to --target");
  cmd->add_option("--native-url", f->native_url,
                  "Play the native target against this running llmsync (http://HOST:PORT) instead of an "
                  "embedded server");
  cmd->add_option("--plot", f->plot, "Draw TTFT and bytes vs turn per target to this PNG (gnuplot)");
  cmd->add_option("--out", f->out, "Also write the JSON report to this file");
  cmd->callback([f, &state] { state.exit_code = RunTrace(*f); });
}

}  // namespace llmsync::cli
