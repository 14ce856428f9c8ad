// `llmsync eval` (logits of a token sequence), `llmsync generate` (sampled continuation) and
// `llmsync bench engine` (prefill and decode throughput as JSON): the native engine, checkable from
// outside.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/kv_storage.h"
#include "engine/matmul.h"
#include "engine/model.h"
#include "engine/rng.h"
#include "engine/sampling.h"

namespace llmsync::cli {
namespace {

using engine::Batch;
using engine::ContiguousKvStorage;
using engine::Engine;
using engine::Model;

// "1,2,3" -> ids. Strict: decimal integers separated by single commas.
Result<std::vector<std::int32_t>> ParseTokens(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    std::size_t end = comma == std::string::npos ? text.size() : comma;
    std::int32_t id = 0;
    auto [ptr, ec] = std::from_chars(text.data() + at, text.data() + end, id);
    if (end == at || ec != std::errc() || ptr != text.data() + end || id < 0) {
      return Status::InvalidArgument("--tokens: '" + text.substr(at, end - at) +
                                     "' is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(id);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  if (ids.empty()) return Status::InvalidArgument("--tokens: no token ids");
  return ids;
}

struct Loaded {
  std::unique_ptr<Model> model;
  std::unique_ptr<Engine> engine;
};

Result<Loaded> LoadEngine(const std::string& path, int threads, std::int64_t max_batch) {
  Loaded l;
  LLMSYNC_ASSIGN_OR_RETURN(l.model, Model::Open(Env::Default(), path, Model::Placement::kHugePageCopy));
  engine::EngineOptions options;
  options.n_threads = threads;
  options.max_batch_tokens = std::clamp<std::int64_t>(max_batch, 1, 512);
  LLMSYNC_ASSIGN_OR_RETURN(l.engine, Engine::Create(*l.model, options));
  return l;
}

int Fail(const Status& s) {
  std::cerr << "error: " << s.Message() << "\n";
  return 1;
}

struct EvalArgs {
  std::string model;
  std::string tokens;
  std::string logits_out;
  int threads = 1;
  bool kv_f32 = false;
};

int RunEval(const EvalArgs& args) {
  auto tokens = ParseTokens(args.tokens);
  if (!tokens.IsOk()) return Fail(tokens.GetStatus());
  auto loaded = LoadEngine(args.model, args.threads, static_cast<std::int64_t>(tokens->size()));
  if (!loaded.IsOk()) return Fail(loaded.GetStatus());
  const std::int64_t n_vocab = loaded->model->Hparams().n_vocab;
  auto dtype = args.kv_f32 ? engine::KvDtype::kF32 : engine::KvDtype::kF16;
  ContiguousKvStorage kv(loaded->model->KvGeometryFor(dtype), static_cast<std::int64_t>(tokens->size()));
  if (Status s = kv.AddSequence(0); !s.IsOk()) return Fail(s);
  Batch batch;
  batch.AddSequence(0, 0, *tokens, /*all_logits=*/true);
  std::vector<float> logits(tokens->size() * static_cast<std::size_t>(n_vocab));
  if (Status s = loaded->engine->Forward(batch, kv, logits); !s.IsOk()) return Fail(s);

  if (!args.logits_out.empty()) {
    std::string bytes(reinterpret_cast<const char*>(logits.data()), logits.size() * sizeof(float));
    if (Status s = WriteFileAtomically(Env::Default(), args.logits_out, bytes); !s.IsOk()) return Fail(s);
  }
  std::vector<std::int32_t> order(static_cast<std::size_t>(n_vocab));
  const std::size_t top = std::min<std::size_t>(5, order.size());
  for (std::size_t p = 0; p < tokens->size(); ++p) {
    const float* row = logits.data() + p * static_cast<std::size_t>(n_vocab);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<std::int32_t>(i);
    std::partial_sort(
        order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
        [row](std::int32_t a, std::int32_t b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    std::cout << "pos " << p << " token " << (*tokens)[p] << ":";
    for (std::size_t i = 0; i < top; ++i) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), " %d (%.6f)", order[i], static_cast<double>(row[order[i]]));
      std::cout << buf;
    }
    std::cout << "\n";
  }
  return 0;
}

struct GenerateArgs {
  std::string model;
  std::string tokens;
  int n_predict = 32;
  int threads = 1;
  bool ignore_eos = false;
  engine::SamplingParams sampling;
};

int RunGenerate(const GenerateArgs& args) {
  auto tokens = ParseTokens(args.tokens);
  if (!tokens.IsOk()) return Fail(tokens.GetStatus());
  if (args.n_predict < 0 || args.n_predict > (1 << 20))
    return Fail(Status::InvalidArgument("-n must be in [0, 2^20]"));
  auto sampler = engine::Sampler::Create(args.sampling);
  if (!sampler.IsOk()) return Fail(sampler.GetStatus());
  auto loaded = LoadEngine(args.model, args.threads, static_cast<std::int64_t>(tokens->size()));
  if (!loaded.IsOk()) return Fail(loaded.GetStatus());
  const Model& model = *loaded->model;
  const std::int64_t n_vocab = model.Hparams().n_vocab;
  std::int64_t eos = -1;
  if (auto v = model.File().GetUint("tokenizer.ggml.eos_token_id"); v.IsOk() && !args.ignore_eos) {
    eos = static_cast<std::int64_t>(*v);
  }
  ContiguousKvStorage kv(model.KvGeometryFor(engine::KvDtype::kF16),
                         static_cast<std::int64_t>(tokens->size()) + args.n_predict);
  if (Status s = kv.AddSequence(0); !s.IsOk()) return Fail(s);

  std::vector<std::int32_t> history = *tokens;
  history.reserve(history.size() + static_cast<std::size_t>(args.n_predict));
  std::vector<float> logits(static_cast<std::size_t>(n_vocab));
  Batch batch;
  batch.AddSequence(0, 0, *tokens);
  std::vector<std::int32_t> generated;
  for (int i = 0; i < args.n_predict; ++i) {
    if (Status s = loaded->engine->Forward(batch, kv, logits); !s.IsOk()) return Fail(s);
    const auto pos = static_cast<std::int64_t>(history.size());
    std::int32_t next = sampler->Sample(logits, history, pos);
    generated.push_back(next);
    history.push_back(next);
    if (next == eos) break;
    batch.Clear();
    batch.Add(0, pos, next, true);
  }
  for (std::size_t i = 0; i < generated.size(); ++i) std::cout << (i ? "," : "") << generated[i];
  std::cout << "\n";
  return 0;
}

struct BenchArgs {
  std::string model;
  int threads = 2;
  int prompt = 128;
  int gen = 32;
};

// CPU time of the whole process (every thread), in seconds. The benchmark reports it beside wall
// time because the machine it runs on is shared: wall time then measures the neighbours too.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Bytes of weights one decode step reads: every matrix once, except the embedding table, of which
// it reads one row (unless the output projection is the same table).
double DecodeWeightBytes(const Model& model) {
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

int RunBenchEngine(const BenchArgs& args) {
  if (args.prompt < 1 || args.prompt > 4096 || args.gen < 1 || args.gen > 4096) {
    return Fail(Status::InvalidArgument("--prompt and --gen must be in [1, 4096]"));
  }
  Env* env = Env::Default();
  std::int64_t t0 = env->NowMicros();
  auto loaded = LoadEngine(args.model, args.threads, args.prompt);
  if (!loaded.IsOk()) return Fail(loaded.GetStatus());
  const Model& model = *loaded->model;
  Engine& eng = *loaded->engine;
  const std::int64_t n_vocab = model.Hparams().n_vocab;
  std::int64_t load_us = env->NowMicros() - t0;

  ContiguousKvStorage kv(model.KvGeometryFor(engine::KvDtype::kF16), args.prompt + args.gen + 1);
  std::vector<float> logits(static_cast<std::size_t>(n_vocab));
  // Warm-up: one token on a scratch sequence pages in every weight before anything is timed.
  Batch batch;
  if (Status s = kv.AddSequence(1); !s.IsOk()) return Fail(s);
  batch.Add(1, 0, 0, true);
  if (Status s = eng.Forward(batch, kv, logits); !s.IsOk()) return Fail(s);

  std::vector<std::int32_t> prompt;
  for (int i = 0; i < args.prompt; ++i) {
    prompt.push_back(static_cast<std::int32_t>(engine::CounterRandom64(42, static_cast<std::uint64_t>(i)) %
                                               static_cast<std::uint64_t>(n_vocab)));
  }
  if (Status s = kv.AddSequence(0); !s.IsOk()) return Fail(s);
  batch.Clear();
  batch.AddSequence(0, 0, prompt);
  double load_avg[1] = {-1};
  if (getloadavg(load_avg, 1) != 1) load_avg[0] = -1;
  t0 = env->NowMicros();
  double cpu0 = ProcessCpuSeconds();
  if (Status s = eng.Forward(batch, kv, logits); !s.IsOk()) return Fail(s);
  std::int64_t prefill_us = env->NowMicros() - t0;
  double prefill_cpu = ProcessCpuSeconds() - cpu0;

  t0 = env->NowMicros();
  cpu0 = ProcessCpuSeconds();
  for (int i = 0; i < args.gen; ++i) {
    batch.Clear();
    batch.Add(0, args.prompt + i, engine::ArgMax(logits), true);
    if (Status s = eng.Forward(batch, kv, logits); !s.IsOk()) return Fail(s);
  }
  std::int64_t decode_us = env->NowMicros() - t0;
  double decode_cpu = ProcessCpuSeconds() - cpu0;

  const double decode_bytes = DecodeWeightBytes(model);
  const double read_gbs = SequentialReadGbs(eng.Threads());

  auto per_s = [](int n, std::int64_t us) { return us > 0 ? 1e6 * n / static_cast<double>(us) : 0.0; };
  // tok/s if every thread had a core to itself: tokens x threads / CPU seconds. Spin-waiting counts
  // as CPU time, so this errs low rather than high.
  auto per_cpu_s = [&](int n, double cpu) { return cpu > 0 ? n * eng.Threads() / cpu : 0.0; };
  const engine::ModelHparams& hp = model.Hparams();
  char json[2048];
  std::snprintf(
      json, sizeof(json),
      "{\"benchmark\": \"engine\", \"model\": \"%s\", \"arch\": \"%s\", \"weights\": \"%s\", "
      "\"n_embd\": %lld, \"n_layer\": %lld, \"n_vocab\": %lld, \"threads\": %d, \"isa\": \"%s\", "
      "\"prompt_tokens\": %d, \"gen_tokens\": %d, \"load_s\": %.3f, \"prefill_s\": %.3f, "
      "\"prefill_tok_s\": %.2f, \"decode_s\": %.3f, \"decode_tok_s\": %.2f, \"prefill_cpu_s\": %.3f, "
      "\"prefill_tok_s_cpu\": %.2f, \"decode_cpu_s\": %.3f, \"decode_tok_s_cpu\": %.2f, "
      "\"decode_weight_mb_per_token\": %.1f, \"decode_weight_gbs\": %.2f, \"memory_read_gbs\": %.2f, "
      "\"load_avg_1m\": %.2f}",
      args.model.c_str(), std::string(engine::ModelArchName(hp.arch)).c_str(),
      std::string(engine::GgmlTypeName(model.Layer(0).wq.type)).c_str(), static_cast<long long>(hp.n_embd),
      static_cast<long long>(hp.n_layer), static_cast<long long>(hp.n_vocab), eng.Threads(),
      std::string(engine::KernelIsaName(engine::ActiveKernelIsa())).c_str(), args.prompt, args.gen,
      static_cast<double>(load_us) / 1e6, static_cast<double>(prefill_us) / 1e6,
      per_s(args.prompt, prefill_us), static_cast<double>(decode_us) / 1e6, per_s(args.gen, decode_us),
      prefill_cpu, per_cpu_s(args.prompt, prefill_cpu), decode_cpu, per_cpu_s(args.gen, decode_cpu),
      decode_bytes / 1e6, decode_bytes * per_s(args.gen, decode_us) / 1e9, read_gbs, load_avg[0]);
  std::cout << json << "\n";
  return 0;
}

}  // namespace

void AddEvalCommands(CLI::App& app, CliState& state) {
  CLI::App* eval = app.add_subcommand("eval", "Print the top-5 next tokens and logits at every position");
  auto eval_args = std::make_shared<EvalArgs>();
  eval->add_option("--model", eval_args->model, "GGUF model")->required();
  eval->add_option("--tokens", eval_args->tokens, "Token ids, e.g. 1,2,3")->required();
  eval->add_option("--logits-out", eval_args->logits_out, "Write raw little-endian f32 [n_tokens x n_vocab]");
  eval->add_option("--threads", eval_args->threads, "Threads (default 1)");
  eval->add_flag("--kv-f32", eval_args->kv_f32, "Keep the KV cache in f32 instead of f16");
  eval->callback([eval_args, &state] { state.exit_code = RunEval(*eval_args); });

  CLI::App* gen = app.add_subcommand("generate", "Generate token ids after a prompt of token ids");
  auto gen_args = std::make_shared<GenerateArgs>();
  engine::SamplingParams& sp = gen_args->sampling;
  gen->add_option("--model", gen_args->model, "GGUF model")->required();
  gen->add_option("--tokens", gen_args->tokens, "Prompt token ids, e.g. 1,2,3")->required();
  gen->add_option("-n,--n-predict", gen_args->n_predict, "Tokens to generate (default 32)");
  gen->add_option("--seed", sp.seed, "Sampling seed");
  gen->add_option("--temp", sp.temperature, "Temperature (0: greedy, the default)");
  gen->add_option("--top-k", sp.top_k, "Top-k (0: off)");
  gen->add_option("--top-p", sp.top_p, "Top-p (1: off)");
  gen->add_option("--min-p", sp.min_p, "Min-p (0: off)");
  gen->add_option("--repeat-penalty", sp.repeat_penalty, "Repetition penalty (1: off)");
  gen->add_option("--repeat-last-n", sp.repeat_last_n, "Tokens the penalty looks back over (-1: all)");
  gen->add_option("--threads", gen_args->threads, "Threads (default 1)");
  gen->add_flag("--ignore-eos", gen_args->ignore_eos, "Do not stop at the end-of-sequence token");
  gen->callback([gen_args, &state] { state.exit_code = RunGenerate(*gen_args); });

  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  CLI::App* bench_engine =
      bench->add_subcommand("engine", "Prefill and decode tokens/s of the native engine");
  auto bench_args = std::make_shared<BenchArgs>();
  bench_engine->add_option("--model", bench_args->model, "GGUF model")->required();
  bench_engine->add_option("--threads", bench_args->threads, "Threads (default 2)");
  bench_engine->add_option("--prompt", bench_args->prompt, "Prompt tokens (default 128)");
  bench_engine->add_option("--gen", bench_args->gen, "Generated tokens (default 32)");
  bench_engine->callback([bench_args, &state] { state.exit_code = RunBenchEngine(*bench_args); });
}

}  // namespace llmsync::cli
