// `llmsync bench engine`: prefill and decode throughput of the native engine on one GGUF file, as
// one JSON line, with the process's memory and the machine's read bandwidth beside it.
//
// What is timed, per repetition (--repetitions, medians reported), on a fresh F16 KV cache:
//   - prefill: --prompt pseudo-random tokens as one batch from position 0;
//   - decode: --gen steps of one token each, either continuing the prompt with the greedy token
//     (--decode-from prompt, the default) or from position 0 of an empty sequence with
//     pseudo-random tokens (--decode-from empty): what llama-bench's `tg` test times, so the two
//     tools can be compared on the same file (bench/peer/llama_cpp.sh).
// A warm-up token on a scratch sequence pages in every weight before anything is timed.
//
// Memory: the weights are mapped, not copied, so the resident set after load is about the file
// (as its pages are touched) plus KV plus scratch. `rss_*` fields come from /proc/self/status:
// after load (before any page is touched), after the warm-up, the peak (VmHWM) over the timed
// work, and its split into file-backed (the mapped weights) and anonymous (KV, scratch, copies)
// pages. The peak is read before the bandwidth probe, which allocates 512 MiB of its own.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/cpu_topology.h"
#include "engine/engine.h"
#include "engine/kv_storage.h"
#include "engine/matmul.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "engine/sampling.h"

namespace llmsync::cli {
namespace {

struct BenchArgs {
  std::string model;
  int threads = 0;  // 0: one per physical core
  int prompt = 128;
  int gen = 32;
  int repetitions = 1;
  std::string decode_from = "prompt";
};

// CPU time of the whole process (every thread), in seconds. The benchmark reports it beside wall
// time because the machine it runs on is shared: wall time then measures the neighbours too.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// A field of /proc/self/status in MiB ("VmRSS", "VmHWM", "RssFile", "RssAnon"); -1 when absent.
double StatusMib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0)
      return std::strtod(line.c_str() + field.size() + 1, nullptr) / 1024.0;
  }
  return -1;
}

// Bytes of weights one decode step reads: every matrix once, except the embedding table, of which
// it reads one row (unless the output projection is the same table).
double DecodeWeightBytes(const engine::Model& model) {
  auto bytes = [](const engine::WeightMatrix& w) { return static_cast<double>(w.row_bytes) * w.rows; };
  double total = model.TiedOutput() ? 0 : static_cast<double>(model.TokenEmbedding().row_bytes);
  total += bytes(model.Output());
  for (std::int64_t i = 0; i < model.Hparams().n_layer; ++i) {
    const engine::LayerWeights& l = model.Layer(i);
    for (const engine::WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
      total += bytes(*w);
  }
  return total;
}

// "q4_K" for a pure file, "q4_K+q6_K" for a mix (Q4_K_M): the matrix types, most bytes first.
std::string WeightTypes(const engine::Model& model) {
  std::vector<std::pair<double, std::string>> by_type;
  auto add = [&](const engine::WeightMatrix& w) {
    std::string name(engine::GgmlTypeName(w.type));
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](const auto& p) { return p.second == name; });
    if (it == by_type.end()) it = by_type.emplace(by_type.end(), 0.0, name);
    it->first += static_cast<double>(w.row_bytes) * w.rows;
  };
  add(model.Output());
  for (std::int64_t i = 0; i < model.Hparams().n_layer; ++i) {
    const engine::LayerWeights& l = model.Layer(i);
    for (const engine::WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) add(*w);
  }
  std::sort(by_type.begin(), by_type.end(), std::greater<>());
  std::string out;
  for (const auto& [bytes, name] : by_type) out += (out.empty() ? "" : "+") + name;
  return out;
}

// The machine's sequential read bandwidth right now with `threads` threads (best of 3 passes over
// 512 MiB): the roof for decode, which streams every weight once per token.
double SequentialReadGbs(int threads) {
  constexpr std::size_t kBytes = std::size_t{512} << 20;
  std::vector<std::uint64_t> buffer(kBytes / sizeof(std::uint64_t), 1);
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(threads));
    std::vector<std::thread> workers;
    const std::int64_t t0 = Env::Default()->NowMicros();
    const std::size_t chunk = buffer.size() / static_cast<std::size_t>(threads);
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        const std::uint64_t* p = buffer.data() + static_cast<std::size_t>(t) * chunk;
        std::uint64_t sum = 0;
        for (std::size_t i = 0; i < chunk; ++i) sum += p[i];
        sums[static_cast<std::size_t>(t)] = sum;
      });
    }
    for (std::thread& w : workers) w.join();
    const std::int64_t us = Env::Default()->NowMicros() - t0;
    if (sums[0] != chunk) return 0;  // keeps the reads; cannot happen
    if (us > 0) best = std::max(best, static_cast<double>(kBytes) / static_cast<double>(us) / 1e3);
  }
  return best;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

std::string JsonList(const std::vector<double>& v) {
  std::string out = "[";
  char buf[32];
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%s%.2f", i ? ", " : "", v[i]);
    out += buf;
  }
  return out + "]";
}

struct Timing {
  std::vector<double> wall_s;
  std::vector<double> cpu_s;
};

int Fail(const Status& s) {
  std::cerr << "error: " << s.Message() << "\n";
  return 1;
}

std::int32_t RandomToken(std::uint64_t stream, int i, std::int64_t n_vocab) {
  return static_cast<std::int32_t>(engine::CounterRandom64(42, static_cast<std::uint64_t>(i), stream) %
                                   static_cast<std::uint64_t>(n_vocab));
}

int RunBenchEngine(const BenchArgs& args) {
  if (args.prompt < 1 || args.prompt > 4096 || args.gen < 1 || args.gen > 4096) {
    return Fail(Status::InvalidArgument("--prompt and --gen must be in [1, 4096]"));
  }
  if (args.repetitions < 1 || args.repetitions > 100) {
    return Fail(Status::InvalidArgument("--repetitions must be in [1, 100]"));
  }
  if (args.decode_from != "prompt" && args.decode_from != "empty") {
    return Fail(Status::InvalidArgument("--decode-from must be prompt or empty"));
  }
  if (args.threads < 0)
    return Fail(Status::InvalidArgument("--threads must be positive (0: physical cores)"));
  const bool from_empty = args.decode_from == "empty";
  Env* env = Env::Default();
  std::int64_t t0 = env->NowMicros();
  // As serve's computing roles do: the streamed matrices in huge pages (LLMSYNC_WEIGHTS=map: mapped).
  auto model_or = engine::Model::Open(env, args.model, engine::Model::Placement::kHugePageCopy);
  if (!model_or.IsOk()) return Fail(model_or.GetStatus());
  const engine::Model& model = **model_or;
  engine::EngineOptions options;
  options.n_threads = args.threads > 0 ? args.threads : engine::DefaultThreadCount();
  options.max_batch_tokens = std::clamp<std::int64_t>(args.prompt, 1, 512);
  auto engine_or = engine::Engine::Create(model, options);
  if (!engine_or.IsOk()) return Fail(engine_or.GetStatus());
  engine::Engine& eng = **engine_or;
  const std::int64_t n_vocab = model.Hparams().n_vocab;
  const std::int64_t load_us = env->NowMicros() - t0;
  const double rss_load = StatusMib("VmRSS");

  const engine::KvGeometry geometry = model.KvGeometryFor(engine::KvDtype::kF16);
  const std::int64_t capacity = from_empty ? std::max(args.prompt, args.gen) : args.prompt + args.gen + 1;
  engine::ContiguousKvStorage kv(geometry, capacity);
  std::vector<float> logits(static_cast<std::size_t>(n_vocab));
  // Warm-up: one token on a scratch sequence pages in every weight before anything is timed.
  engine::Batch batch;
  if (Status s = kv.AddSequence(1); !s.IsOk()) return Fail(s);
  batch.Add(1, 0, 0, true);
  if (Status s = eng.Forward(batch, kv, logits); !s.IsOk()) return Fail(s);
  const double rss_warm = StatusMib("VmRSS");

  std::vector<std::int32_t> prompt;
  for (int i = 0; i < args.prompt; ++i) prompt.push_back(RandomToken(0, i, n_vocab));
  double load_avg[1] = {-1};
  if (getloadavg(load_avg, 1) != 1) load_avg[0] = -1;
  Timing prefill;
  Timing decode;
  auto timed = [&](Timing& t, auto&& work) -> Status {
    const std::int64_t w0 = env->NowMicros();
    const double c0 = ProcessCpuSeconds();
    LLMSYNC_RETURN_IF_ERROR(work());
    t.wall_s.push_back(static_cast<double>(env->NowMicros() - w0) / 1e6);
    t.cpu_s.push_back(ProcessCpuSeconds() - c0);
    return Status::Ok();
  };
  for (int rep = 0; rep < args.repetitions; ++rep) {
    (void)kv.RemoveSequence(0);
    if (Status s = kv.AddSequence(0); !s.IsOk()) return Fail(s);
    batch.Clear();
    batch.AddSequence(0, 0, prompt);
    if (Status s = timed(prefill, [&] { return eng.Forward(batch, kv, logits); }); !s.IsOk()) return Fail(s);
    const int start = from_empty ? 0 : args.prompt;
    if (from_empty) {
      (void)kv.RemoveSequence(0);
      if (Status s = kv.AddSequence(0); !s.IsOk()) return Fail(s);
    }
    Status s = timed(decode, [&]() -> Status {
      for (int i = 0; i < args.gen; ++i) {
        batch.Clear();
        const std::int32_t token = from_empty ? RandomToken(1, i, n_vocab) : engine::ArgMax(logits);
        batch.Add(0, start + i, token, true);
        LLMSYNC_RETURN_IF_ERROR(eng.Forward(batch, kv, logits));
      }
      return Status::Ok();
    });
    if (!s.IsOk()) return Fail(s);
  }
  const double rss_peak = StatusMib("VmHWM");
  const double rss_file = StatusMib("RssFile");
  const double rss_anon = StatusMib("RssAnon");
  const double kv_mib = static_cast<double>(geometry.RowBytes()) * 2.0 *
                        static_cast<double>(geometry.n_layer) * static_cast<double>(capacity) * 2.0 /
                        (1024.0 * 1024.0);  // two sequences
  const double file_mib = static_cast<double>(env->FileSize(args.model).ValueOr(0)) / (1024.0 * 1024.0);

  const double decode_bytes = DecodeWeightBytes(model);
  const double read_gbs = SequentialReadGbs(eng.Threads());

  auto rates = [](int n, const std::vector<double>& seconds) {
    std::vector<double> r;
    for (double s : seconds) r.push_back(s > 0 ? n / s : 0.0);
    return r;
  };
  const std::vector<double> prefill_rates = rates(args.prompt, prefill.wall_s);
  const std::vector<double> decode_rates = rates(args.gen, decode.wall_s);
  const double prefill_s = Median(prefill.wall_s);
  const double decode_s = Median(decode.wall_s);
  const double prefill_cpu = Median(prefill.cpu_s);
  const double decode_cpu = Median(decode.cpu_s);
  // tok/s if every thread had a core to itself: tokens x threads / CPU seconds. Spin-waiting counts
  // as CPU time, so this errs low rather than high.
  auto per_cpu_s = [&](int n, double cpu) { return cpu > 0 ? n * eng.Threads() / cpu : 0.0; };
  const engine::ModelHparams& hp = model.Hparams();
  char json[4096];
  std::snprintf(
      json, sizeof(json),
      "{\"benchmark\": \"engine\", \"model\": \"%s\", \"arch\": \"%s\", \"weights\": \"%s\", "
      "\"n_embd\": %lld, \"n_layer\": %lld, \"n_vocab\": %lld, \"threads\": %d, \"isa\": \"%s\", "
      "\"prompt_tokens\": %d, \"gen_tokens\": %d, \"decode_from\": \"%s\", \"repetitions\": %d, "
      "\"load_s\": %.3f, \"prefill_s\": %.3f, \"prefill_tok_s\": %.2f, \"decode_s\": %.3f, "
      "\"decode_tok_s\": %.2f, \"prefill_tok_s_all\": %s, \"decode_tok_s_all\": %s, "
      "\"prefill_cpu_s\": %.3f, \"prefill_tok_s_cpu\": %.2f, \"decode_cpu_s\": %.3f, "
      "\"decode_tok_s_cpu\": %.2f, \"decode_weight_mb_per_token\": %.1f, \"decode_weight_gbs\": %.2f, "
      "\"memory_read_gbs\": %.2f, \"file_mib\": %.1f, \"kv_mib\": %.1f, \"rss_after_load_mib\": %.1f, "
      "\"rss_after_warmup_mib\": %.1f, \"rss_peak_mib\": %.1f, \"rss_file_mib\": %.1f, "
      "\"rss_anon_mib\": %.1f, \"load_avg_1m\": %.2f}",
      args.model.c_str(), std::string(engine::ModelArchName(hp.arch)).c_str(), WeightTypes(model).c_str(),
      static_cast<long long>(hp.n_embd), static_cast<long long>(hp.n_layer),
      static_cast<long long>(hp.n_vocab), eng.Threads(),
      std::string(engine::KernelIsaName(engine::ActiveKernelIsa())).c_str(), args.prompt, args.gen,
      args.decode_from.c_str(), args.repetitions, static_cast<double>(load_us) / 1e6, prefill_s,
      prefill_s > 0 ? args.prompt / prefill_s : 0.0, decode_s, decode_s > 0 ? args.gen / decode_s : 0.0,
      JsonList(prefill_rates).c_str(), JsonList(decode_rates).c_str(), prefill_cpu,
      per_cpu_s(args.prompt, prefill_cpu), decode_cpu, per_cpu_s(args.gen, decode_cpu), decode_bytes / 1e6,
      decode_s > 0 ? decode_bytes * args.gen / decode_s / 1e9 : 0.0, read_gbs, file_mib, kv_mib, rss_load,
      rss_warm, rss_peak, rss_file, rss_anon, load_avg[0]);
  std::cout << json << "\n";
  return 0;
}

}  // namespace

void AddBenchEngineCommands(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  CLI::App* cmd = bench->add_subcommand("engine", "Prefill and decode tokens/s of the native engine");
  auto args = std::make_shared<BenchArgs>();
  cmd->add_option("--model", args->model, "GGUF model")->required();
  cmd->add_option("--threads", args->threads, "Threads (default: one per physical core)");
  cmd->add_option("--prompt", args->prompt, "Prompt tokens (default 128; llama-bench -p)");
  cmd->add_option("--gen", args->gen, "Generated tokens (default 32; llama-bench -n)");
  cmd->add_option("--repetitions", args->repetitions, "Timed repetitions, medians reported (default 1)");
  cmd->add_option("--decode-from", args->decode_from,
                  "prompt: decode after the prompt (default); empty: from position 0, as llama-bench's tg");
  cmd->callback([args, &state] { state.exit_code = RunBenchEngine(*args); });
}

}  // namespace llmsync::cli
