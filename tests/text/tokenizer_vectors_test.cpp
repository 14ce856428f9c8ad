// The tokenizer test vectors in ../shared/vectors/tokenizer: for each vocabulary, every case of
// ggml-vocab-X.gguf.inp must encode (no BOS, special tokens not parsed) to exactly the ids on the
// matching line of ggml-vocab-X.gguf.out, and decode back to the same text.
//
// File format: .inp is the cases, each followed by "\n__ggml_vocab_test__\n" (so the newline before
// a separator belongs to the separator, not the case); .out has one line per case, ids separated by
// spaces, an empty line for an empty case.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/env.h"
#include "engine/gguf_reader.h"
#include "shared_dir.h"
#include "text/tokenizer.h"

namespace llmsync::text {
namespace {

constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> ParseInputs(const std::string& content) {
  std::vector<std::string> cases;
  std::size_t pos = 0;
  while (pos < content.size()) {
    const std::size_t sep = content.find(kSeparator, pos);
    if (sep == std::string::npos) {
      cases.push_back(content.substr(pos));  // a final case without a separator
      break;
    }
    cases.push_back(content.substr(pos, sep - pos));
    pos = sep + kSeparator.size();
  }
  return cases;
}

std::vector<std::vector<TokenId>> ParseOutputs(const std::string& content) {
  std::vector<std::vector<TokenId>> lines;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<TokenId> ids;
    TokenId id = 0;
    while (fields >> id) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

std::string VocabPath(const std::string& name) {
  return testing::SharedDir() + "/vectors/tokenizer/ggml-vocab-" + name + ".gguf";
}

std::unique_ptr<Tokenizer> Load(const std::string& name) {
  auto tokenizer = LoadTokenizerFromFile(Env::Default(), VocabPath(name));
  EXPECT_TRUE(tokenizer.IsOk()) << tokenizer.GetStatus().ToString();
  return tokenizer.IsOk() ? std::move(tokenizer).Value() : nullptr;
}

std::string Printable(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out;
}

class TokenizerVectorsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectorsTest, EncodesEveryCaseExactlyAndRoundTrips) {
  const std::string name = GetParam();
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-" + name + ".gguf.inp");
  std::unique_ptr<Tokenizer> tokenizer = Load(name);
  ASSERT_NE(tokenizer, nullptr);
  const std::vector<std::string> inputs = ParseInputs(ReadAll(VocabPath(name) + ".inp"));
  const std::vector<std::vector<TokenId>> outputs = ParseOutputs(ReadAll(VocabPath(name) + ".out"));
  ASSERT_EQ(inputs.size(), outputs.size()) << "the .inp and .out files disagree on the number of cases";
  ASSERT_FALSE(inputs.empty());

  int matched = 0;
  int round_tripped = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    auto ids = tokenizer->Encode(inputs[i]);
    ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
    EXPECT_EQ(*ids, outputs[i]) << name << " case " << i << ": \"" << Printable(inputs[i]) << "\"";
    if (*ids == outputs[i]) ++matched;
    auto text = tokenizer->Decode(*ids);
    ASSERT_TRUE(text.IsOk()) << text.GetStatus().ToString();
    EXPECT_EQ(*text, inputs[i]) << name << " case " << i << " does not round-trip";
    if (*text == inputs[i]) ++round_tripped;
  }
  std::cout << "[ vectors  ] " << name << ": " << matched << "/" << inputs.size() << " cases match, "
            << round_tripped << "/" << inputs.size() << " round-trip\n";
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerVectorsTest,
                         ::testing::Values("gpt-2", "llama-spm", "deepseek-llm", "deepseek-coder",
                                           "starcoder", "falcon", "phi-3", "refact", "mpt"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

// Vocabularies without test cases load, and round-trip the other vocabularies' inputs.
class TokenizerVocabOnlyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVocabOnlyTest, LoadsAndRoundTrips) {
  const std::string name = GetParam();
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-" + name + ".gguf");
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-gpt-2.gguf.inp");
  std::unique_ptr<Tokenizer> tokenizer = Load(name);
  ASSERT_NE(tokenizer, nullptr);
  for (const std::string& input : ParseInputs(ReadAll(VocabPath("gpt-2") + ".inp"))) {
    auto ids = tokenizer->Encode(input);
    ASSERT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
    auto text = tokenizer->Decode(*ids);
    ASSERT_TRUE(text.IsOk()) << text.GetStatus().ToString();
    EXPECT_EQ(*text, input) << name << ": \"" << Printable(input) << "\"";
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, TokenizerVocabOnlyTest, ::testing::Values("gpt-neox", "baichuan"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace llmsync::text
