// `llmsync model make-test` (write a seeded random Llama-family GGUF) and `llmsync model info`
// (describe a GGUF: architecture, shapes, tensor types, vocabulary, chat template, and whether the
// native engine loads it).
#include <cctype>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/hparams.h"
#include "engine/make_test_model.h"
#include "engine/model.h"

namespace llmsync::cli {
namespace {

using engine::GgufFile;

struct MakeTestArgs {
  std::string arch = "llama";
  std::string type = "f32";
  std::string out;
  engine::MakeTestModelOptions options;
};

int RunMakeTest(MakeTestArgs& args) {
  auto arch = engine::ParseModelArch(args.arch);
  if (!arch.IsOk()) {
    std::cerr << "error: --arch: " << arch.GetStatus().Message() << "\n";
    return 2;
  }
  // q4_k_m: llama.cpp's Q4_K_M mix of Q4_K and Q6_K (make_test_model.h).
  std::string lower = args.type;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  args.options.q4_k_m = lower == "q4_k_m";
  auto type = engine::ParseGgmlType(args.options.q4_k_m ? "q4_K" : args.type);
  if (!type.IsOk() || !engine::IsComputeSupported(*type)) {
    std::cerr << "error: --type '" << args.type
              << "' is not one of f32, f16, bf16, q8_0, q4_0, q4_k, q4_k_m, q6_k\n";
    return 2;
  }
  args.options.arch = *arch;
  args.options.type = *type;
  Status s = engine::MakeTestModel(Env::Default(), args.options, args.out);
  if (!s.IsOk()) {
    std::cerr << "error: " << s.Message() << "\n";
    return 1;
  }
  std::cout << "wrote " << args.out << "\n";
  return 0;
}

void PrintHparams(const engine::ModelHparams& hp) {
  std::cout << "  n_ctx_train " << hp.n_ctx_train << ", n_embd " << hp.n_embd << ", n_layer " << hp.n_layer
            << ", n_ff " << hp.n_ff << "\n"
            << "  n_head " << hp.n_head << ", n_head_kv " << hp.n_head_kv << ", head_dim " << hp.head_dim
            << ", n_rot " << hp.n_rot << " ("
            << (hp.rope_style == engine::RopeStyle::kNorm ? "normal" : "neox") << " rope, freq_base "
            << hp.rope_freq_base << ", freq_scale " << hp.rope_freq_scale << ")\n"
            << "  rms_eps " << hp.rms_eps << "\n";
}

int RunInfo(const std::string& path) {
  auto file = GgufFile::Open(Env::Default(), path);
  if (!file.IsOk()) {
    std::cerr << "error: " << path << ": " << file.GetStatus().Message() << "\n";
    return 1;
  }
  const GgufFile& f = **file;
  std::cout << "file: " << path << "\n"
            << "gguf: version " << f.Version() << ", " << f.Metadata().size() << " metadata keys, "
            << f.Tensors().size() << " tensors\n";
  auto arch = f.GetString("general.architecture");
  std::cout << "architecture: " << (arch.IsOk() ? std::string(*arch) : "(none)") << "\n";
  if (auto name = f.GetString("general.name"); name.IsOk()) std::cout << "name: " << *name << "\n";

  std::map<std::string, int> type_counts;
  std::int64_t elements = 0;
  std::uint64_t bytes = 0;
  for (const engine::GgufTensorInfo& t : f.Tensors()) {
    ++type_counts[std::string(engine::GgmlTypeName(t.type))];
    elements += t.NumElements();
    bytes += t.n_bytes;
  }
  std::cout << "tensors: " << elements << " parameters, " << bytes << " bytes; types:";
  for (const auto& [type, count] : type_counts) std::cout << " " << type << " x" << count;
  std::cout << "\n";
  for (const char* name : {"token_embd.weight", "output.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight",
                           "blk.0.ffn_up.weight"}) {
    if (const engine::GgufTensorInfo* t = f.FindTensor(name)) {
      std::cout << "  " << name << " " << t->ShapeString() << " " << engine::GgmlTypeName(t->type) << "\n";
    }
  }

  auto vocab_model = f.GetString("tokenizer.ggml.model");
  auto tokens = f.GetArray("tokenizer.ggml.tokens");
  std::cout << "vocab: " << (vocab_model.IsOk() ? std::string(*vocab_model) : "(none)") << ", "
            << (tokens.IsOk() ? (*tokens)->items.size() : 0) << " tokens\n";
  std::cout << "chat template: " << (f.Find("tokenizer.chat_template") != nullptr ? "present" : "absent")
            << "\n";

  auto model = engine::Model::FromGguf(std::move(file).Value());
  if (!model.IsOk()) {
    std::cout << "engine: cannot load: " << model.GetStatus().Message() << "\n";
    return 0;
  }
  const engine::ModelHparams& hp = (*model)->Hparams();
  std::cout << "engine: loads (" << engine::ModelArchName(hp.arch) << ", n_vocab " << hp.n_vocab
            << (hp.qkv_bias ? ", qkv bias" : "") << (hp.qk_norm ? ", q/k norm" : "")
            << ((*model)->TiedOutput() ? ", output tied to token_embd" : "")
            << ((*model)->RopeFreqFactors().empty() ? "" : ", rope_freqs") << ")\n";
  PrintHparams(hp);
  return 0;
}

}  // namespace

void AddModelCommands(CLI::App& app, CliState& state) {
  CLI::App* model = GetOrAddSubcommand(app, "model", "Create and inspect GGUF model files");

  CLI::App* make = model->add_subcommand("make-test", "Write a Llama-family GGUF with seeded random weights");
  auto args = std::make_shared<MakeTestArgs>();
  engine::MakeTestModelOptions& o = args->options;
  make->add_option("--arch", args->arch, "llama | qwen2 | qwen3")->required();
  make->add_option("--vocab", o.vocab_path, "GGUF whose tokenizer.* metadata is copied (default: 256 bytes)");
  make->add_option("--vocab-size", o.vocab_size, "Pad the built-in byte vocabulary to this many tokens");
  make->add_flag("--readable-vocab", o.readable_vocab,
                 "The demo model's vocabulary: printable ASCII, common English words and an EOS");
  make->add_option("--n-embd", o.n_embd, "Embedding length")->required();
  make->add_option("--n-layer", o.n_layer, "Number of blocks")->required();
  make->add_option("--n-head", o.n_head, "Attention heads")->required();
  make->add_option("--n-head-kv", o.n_head_kv, "KV heads (GQA)")->required();
  make->add_option("--n-ff", o.n_ff, "Feed-forward length")->required();
  make->add_option("--head-dim", o.head_dim, "Head dimension (default n_embd / n_head)");
  make->add_option("--ctx", o.context_length, "Training context length written to the file");
  make->add_option("--type", args->type,
                   "f32 | f16 | bf16 | q8_0 | q4_0 | q4_k | q4_k_m (Q4_K + Q6_K mix) | q6_k");
  make->add_option("--seed", o.seed, "Seed of the weights");
  make->add_option("--weight-std", o.weight_std, "Standard deviation of the matrices (default 0.02)");
  make->add_flag("--tie-embeddings", o.tie_embeddings, "Omit output.weight (tied to token_embd)");
  make->add_flag("--llama3-rope", o.llama3_rope, "Write llama3 rope_freqs.weight (llama only)");
  make->add_option("--out", args->out, "Output file")->required();
  make->callback([args, &state] { state.exit_code = RunMakeTest(*args); });

  CLI::App* info = model->add_subcommand("info", "Describe a GGUF file");
  auto path = std::make_shared<std::string>();
  info->add_option("file", *path, "GGUF file")->required();
  info->callback([path, &state] { state.exit_code = RunInfo(*path); });
}

}  // namespace llmsync::cli
