// The engine's commands from outside: model make-test / info, eval, generate and bench engine,
// including every kind of bad input (a clear message and a non-zero exit, never a crash).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../base/test_dir.h"
#include "../cli/run_cli.h"
#include "shared_dir.h"

namespace llmsync {
namespace {

using testing::RunLlmsync;
using testing::TestDir;

const char* const kTiny = "--n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128";

class EngineCliTest : public ::testing::Test {
 protected:
  std::string MakeModel(const std::string& name, const std::string& extra = "--arch llama") {
    std::string path = dir_.File(name);
    auto r = RunLlmsync("model make-test " + extra + " " + kTiny + " --seed 3 --out " + path);
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_NE(r.out.find("wrote"), std::string::npos) << r.out;
    return path;
  }
  TestDir dir_;
};

void ExpectFailure(const std::string& args, const std::string& needle) {
  auto r = RunLlmsync(args);
  EXPECT_NE(r.exit_code, 0) << args << "\n" << r.out;
  EXPECT_LT(r.exit_code, 128) << "crashed: " << args << "\n" << r.out;
  EXPECT_NE(r.out.find(needle), std::string::npos) << args << "\n" << r.out;
}

TEST_F(EngineCliTest, MakeTestAndInfo) {
  std::string model = MakeModel("q.gguf", "--arch qwen2 --type q8_0 --tie-embeddings");
  auto r = RunLlmsync("model info " + model);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  for (const char* want :
       {"architecture: qwen2", "q8_0 x", "f32 x", "vocab: llama, 256 tokens", "chat template: absent",
        "engine: loads (qwen2, n_vocab 256, qkv bias, output tied to token_embd)", "n_head_kv 2",
        "blk.0.attn_k.weight [64, 32] q8_0"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
}

TEST_F(EngineCliTest, MakeTestCopiesTheVocabulary) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-llama-spm.gguf");
  std::string vocab = testing::SharedDir() + "/vectors/tokenizer/ggml-vocab-llama-spm.gguf";
  std::string model = MakeModel("v.gguf", "--arch llama --vocab " + vocab);
  auto r = RunLlmsync("model info " + model);
  EXPECT_NE(r.out.find("vocab: llama, 32000 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("n_vocab 32000"), std::string::npos) << r.out;
}

TEST_F(EngineCliTest, MakeTestRejectsBadArguments) {
  std::string out = " --out " + dir_.File("x.gguf");
  ExpectFailure("model make-test --arch gpt2 " + std::string(kTiny) + out, "gpt2");
  ExpectFailure("model make-test --arch llama --type q5_k " + std::string(kTiny) + out, "--type");
  ExpectFailure(
      "model make-test --arch llama --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 3 --n-ff 128" + out,
      "n_head_kv");
  ExpectFailure(
      "model make-test --arch llama --n-embd -5 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128" + out,
      "n_embd");
  ExpectFailure("model make-test --arch llama " + std::string(kTiny) + " --vocab /nonexistent.gguf" + out,
                "/nonexistent.gguf");
  ExpectFailure("model make-test --arch llama " + std::string(kTiny), "--out");
}

TEST_F(EngineCliTest, InfoOnBadFiles) {
  ExpectFailure("model info /nonexistent.gguf", "/nonexistent.gguf");
  std::string junk = dir_.File("junk.gguf");
  std::ofstream(junk) << "definitely not a gguf";
  ExpectFailure("model info " + junk, "not a GGUF file");
}

TEST_F(EngineCliTest, EvalPrintsTopTokensAndWritesLogits) {
  std::string model = MakeModel("m.gguf");
  std::string bin = dir_.File("logits.bin");
  auto r = RunLlmsync("eval --model " + model + " --tokens 1,2,3 --logits-out " + bin);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("pos 0 token 1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pos 2 token 3:"), std::string::npos) << r.out;
  std::ifstream in(bin, std::ios::binary | std::ios::ate);
  EXPECT_EQ(static_cast<long>(in.tellg()), 3 * 256 * 4);
  auto again = RunLlmsync("eval --model " + model + " --tokens 1,2,3 --threads 3");
  EXPECT_EQ(again.out, r.out) << "thread count must not change the output";
}

TEST_F(EngineCliTest, EvalAndGenerateRejectBadInput) {
  std::string model = MakeModel("m.gguf");
  ExpectFailure("eval --model " + model + " --tokens 1,,2", "not a token id");
  ExpectFailure("eval --model " + model + " --tokens abc", "not a token id");
  ExpectFailure("eval --model " + model + " --tokens ''", "not a token id");
  ExpectFailure("eval --model " + model + " --tokens 99999999999", "not a token id");
  ExpectFailure("eval --model " + model + " --tokens 1,256", "outside the vocabulary");
  ExpectFailure("eval --model " + model + " --tokens 1 --threads 0", "threads");
  ExpectFailure("eval --model /nonexistent.gguf --tokens 1", "/nonexistent.gguf");
  ExpectFailure("eval --model " + model + " --tokens 1 --logits-out /nonexistent/dir/x.bin",
                "/nonexistent/dir");
  std::string truncated = dir_.File("t.gguf");
  {
    std::ifstream in(model, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  ExpectFailure("eval --model " + truncated + " --tokens 1", "runs past the end");
  ExpectFailure("generate --model " + model + " --tokens 1 --temp -1", "temperature");
  ExpectFailure("generate --model " + model + " --tokens 1 --top-p 0", "top_p");
  ExpectFailure("generate --model " + model + " --tokens 1 -n -4", "-n");
  ExpectFailure("generate --model " + model + " --tokens 300", "outside the vocabulary");
}

TEST_F(EngineCliTest, GenerateIsReproducibleBySeed) {
  std::string model = MakeModel("m.gguf", "--arch qwen3 --type q4_0 --weight-std 0.1");
  std::string args = "generate --model " + model +
                     " --tokens 5,6,7 -n 12 --temp 1.0 --top-k 50 --top-p 0.9 "
                     "--min-p 0.01 --repeat-penalty 1.1 ";
  auto a = RunLlmsync(args + "--seed 1");
  auto b = RunLlmsync(args + "--seed 1 --threads 2");
  auto c = RunLlmsync(args + "--seed 2");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  EXPECT_EQ(a.out, b.out);
  EXPECT_NE(a.out, c.out);
  EXPECT_EQ(std::count(a.out.begin(), a.out.end(), ','), 11) << a.out;
  auto greedy = RunLlmsync("generate --model " + model + " --tokens 5,6,7 -n 4");
  EXPECT_EQ(greedy.exit_code, 0) << greedy.out;
}

TEST_F(EngineCliTest, BenchEnginePrintsJson) {
  std::string model = MakeModel("m.gguf");
  auto r = RunLlmsync("bench engine --model " + model + " --threads 2 --prompt 8 --gen 4");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* key : {"\"benchmark\": \"engine\"", "\"prefill_tok_s\":", "\"decode_tok_s\":",
                          "\"threads\": 2", "\"prompt_tokens\": 8", "\"gen_tokens\": 4"}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << "\n" << r.out;
  }
  // The roofline figures are measured, so positive.
  for (const char* key :
       {"\"decode_weight_mb_per_token\": ", "\"decode_weight_gbs\": ", "\"memory_read_gbs\": "}) {
    std::size_t at = r.out.find(key);
    ASSERT_NE(at, std::string::npos) << key << "\n" << r.out;
    EXPECT_GT(std::strtod(r.out.c_str() + at + std::strlen(key), nullptr), 0.0) << key << "\n" << r.out;
  }
  ExpectFailure("bench engine --model " + model + " --prompt 0", "--prompt");
  ExpectFailure("bench engine --model " + model + " --decode-from middle", "--decode-from");
  ExpectFailure("bench engine --model " + model + " --repetitions 0", "--repetitions");
}

// llama-bench's tg (decode from an empty context), repetitions, and the memory the process holds:
// the weights are mapped, so the file-backed pages carry them and the peak stays near file + KV.
TEST_F(EngineCliTest, BenchEngineMatchesLlamaBenchAndReportsMemory) {
  std::string model = MakeModel("m.gguf");
  auto r = RunLlmsync("bench engine --model " + model +
                      " --threads 1 --prompt 8 --gen 4 --repetitions 3 --decode-from empty");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("\"decode_from\": \"empty\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\"repetitions\": 3"), std::string::npos) << r.out;
  auto field = [&](const std::string& key) {
    std::size_t at = r.out.find("\"" + key + "\": ");
    EXPECT_NE(at, std::string::npos) << key << "\n" << r.out;
    return at == std::string::npos ? -1.0 : std::strtod(r.out.c_str() + at + key.size() + 4, nullptr);
  };
  std::size_t all = r.out.find("\"decode_tok_s_all\": [");
  ASSERT_NE(all, std::string::npos) << r.out;
  EXPECT_EQ(
      std::count(r.out.begin() + static_cast<std::ptrdiff_t>(all), r.out.begin() + r.out.find(']', all), ','),
      2)
      << "one rate per repetition\n"
      << r.out;
  EXPECT_GT(field("file_mib"), 0.0);
  EXPECT_GE(field("kv_mib"), 0.0);  // present (tiny here: under 0.05 MiB)
  EXPECT_GT(field("rss_peak_mib"), 0.0);
  EXPECT_GE(field("rss_peak_mib"), field("rss_after_load_mib"));
  EXPECT_GT(field("rss_file_mib"), 0.0);
  EXPECT_GE(field("rss_anon_mib"), 0.0);
}

}  // namespace
}  // namespace llmsync
