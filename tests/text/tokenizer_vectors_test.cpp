// The tokenizer test vectors in ../shared/vectors/tokenizer (vocab_vectors.h): for each vocabulary,
// every case of ggml-vocab-X.gguf.inp must encode (no BOS, special tokens not parsed) to exactly the
// ids on the matching line of ggml-vocab-X.gguf.out, and decode back to the same text.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "base/env.h"
#include "engine/gguf/gguf_reader.h"
#include "shared_dir.h"
#include "text/stream_decoder.h"
#include "text/tokenizer.h"
#include "vocab_vectors.h"

namespace llmsync::text {
namespace {

using testing::ReadVocabVectors;
using testing::VocabVectorPath;

std::unique_ptr<Tokenizer> Load(const std::string& name) {
  auto tokenizer = LoadTokenizerFromFile(Env::Default(), VocabVectorPath(name));
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
  const testing::VocabVectors vectors = ReadVocabVectors(name);
  const std::vector<std::string>& inputs = vectors.inputs;
  const std::vector<std::vector<TokenId>>& outputs = vectors.outputs;
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
                                           "starcoder", "falcon", "phi-3", "refact", "mpt", "llama-bpe",
                                           "qwen3"),
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
  for (const std::string& input : ReadVocabVectors("gpt-2").inputs) {
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

// Behaviour of the real vocabularies beyond the vectors: special and user-defined tokens, BOS, and
// streaming a character split across SentencePiece byte tokens.
TEST(TokenizerRealVocabTest, Gpt2EndOfTextOnlyWithParseSpecial) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-gpt-2.gguf");
  std::unique_ptr<Tokenizer> tok = Load("gpt-2");
  ASSERT_NE(tok, nullptr);
  EncodeOptions special;
  special.parse_special = true;
  EXPECT_EQ(*tok->Encode("Hello<|endoftext|>", special), (std::vector<TokenId>{15496, 50256}));
  const std::vector<TokenId> plain = *tok->Encode("Hello<|endoftext|>");
  EXPECT_GT(plain.size(), 2u);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 50256), 0);
  EXPECT_EQ(tok->Specials().bos, std::optional<TokenId>(50256));
  EXPECT_FALSE(tok->Specials().add_bos);
}

TEST(TokenizerRealVocabTest, DeepseekUserDefinedTokensCanBeSpelledInstead) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-deepseek-coder.gguf");
  std::unique_ptr<Tokenizer> tok = Load("deepseek-coder");
  ASSERT_NE(tok, nullptr);
  const std::string text = "F\xC3\xBChrer <|User|>";
  const std::vector<TokenId> matched = *tok->Encode(text);
  EXPECT_EQ(std::count(matched.begin(), matched.end(), 32009), 1);  // "\xC3\xBC" is user-defined
  EncodeOptions spelled;
  spelled.match_user_defined = false;
  const std::vector<TokenId> bytes = *tok->Encode(text, spelled);
  EXPECT_EQ(std::count(bytes.begin(), bytes.end(), 32009), 0);
  EXPECT_EQ(*tok->Decode(matched), text);
  EXPECT_EQ(*tok->Decode(bytes), text);
  EXPECT_TRUE(tok->Specials().add_bos);
}

// Qwen2/Qwen3's tokenizer.json normalizes to NFC before splitting; Llama 3's has no normalizer.
TEST(TokenizerRealVocabTest, Qwen3NormalizesToNfcAndLlama3DoesNot) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-qwen3.gguf");
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-llama-bpe.gguf");
  std::unique_ptr<Tokenizer> qwen = Load("qwen3");
  std::unique_ptr<Tokenizer> llama = Load("llama-bpe");
  ASSERT_NE(qwen, nullptr);
  ASSERT_NE(llama, nullptr);
  // "Cafe" + combining acute, the ohm sign U+2126, Hangul jamo U+1100 U+1161.
  const std::string decomposed = "Cafe\xCC\x81 \xE2\x84\xA6 \xE1\x84\x80\xE1\x85\xA1";
  // "Café", Greek omega U+03A9, the syllable U+AC00: the NFC form.
  const std::string composed = "Caf\xC3\xA9 \xCE\xA9 \xEA\xB0\x80";
  EXPECT_EQ(*qwen->Encode(decomposed), *qwen->Encode(composed));
  EXPECT_EQ(*qwen->Decode(*qwen->Encode(decomposed)), composed) << "decoding gives the normalized text";
  EXPECT_NE(*llama->Encode(decomposed), *llama->Encode(composed));
  EXPECT_EQ(*llama->Decode(*llama->Encode(decomposed)), decomposed);
  // Control tokens are matched before normalization, and ASCII is untouched.
  EncodeOptions special;
  special.parse_special = true;
  const std::vector<TokenId> ids = *qwen->Encode("<|im_start|>user\nhi<|im_end|>", special);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
}

TEST(TokenizerRealVocabTest, LlamaSpmStreamsAnEmojiSpelledInBytes) {
  LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-llama-spm.gguf");
  std::unique_ptr<Tokenizer> tok = Load("llama-spm");
  ASSERT_NE(tok, nullptr);
  EncodeOptions bos;
  bos.add_bos = true;
  const std::string text = "Hi \xF0\x9F\xA6\x99!";  // a llama emoji, not in the vocabulary
  const std::vector<TokenId> ids = *tok->Encode(text, bos);
  ASSERT_GE(ids.size(), 6u);
  EXPECT_EQ(ids[0], 1);
  StreamDecoder stream(*tok);
  std::vector<std::string> pieces;
  for (TokenId id : ids) pieces.push_back(*stream.Push(id));
  std::string joined;
  for (const std::string& p : pieces) {
    EXPECT_TRUE(p.empty() || p.find("\xF0") == std::string::npos ||
                p.find("\xF0\x9F\xA6\x99") != std::string::npos)
        << "a piece split the emoji";
    joined += p;
  }
  joined += stream.Flush();
  EXPECT_EQ(joined, "<s>" + text);
  DecodeOptions quiet;
  quiet.render_special = false;
  EXPECT_EQ(*tok->Decode(ids, quiet), text);
}

}  // namespace
}  // namespace llmsync::text
