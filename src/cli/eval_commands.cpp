// `llmsync eval` (logits of a token sequence) and `llmsync generate` (sampled continuation): the
// native engine, checkable from outside. `bench engine` is in bench/bench_engine_command.cpp.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/engine.h"
#include "engine/kv_storage.h"
#include "engine/model.h"
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
}

}  // namespace llmsync::cli
