// `llmsync tokenize` and `llmsync bench tokenizer`, run as the real executable on a tiny in-memory
// vocabulary written to a temporary GGUF file.
#include <gtest/gtest.h>

#include "../base/test_dir.h"
#include "../cli/run_cli.h"
#include "base/env.h"
#include "tokenizer_test_vocab.h"

namespace llmsync::text {
namespace {

using llmsync::testing::RunLlmsync;

class TokenizeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("tiny-bpe.gguf");
    ASSERT_TRUE(test_vocab::TinyBpeWriter().WriteTo(Env::Default(), model_).IsOk());
  }

  llmsync::testing::TestDir dir_;
  std::string model_;
};

TEST_F(TokenizeCliTest, PrintsIdsAsAJsonArray) {
  auto r = RunLlmsync("tokenize --model " + model_ + " --text 'hello world'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "[259, 266]\n");
  r = RunLlmsync("tokenize --model " + model_ + " --text ''");
  EXPECT_EQ(r.out, "[]\n");
}

TEST_F(TokenizeCliTest, SpecialTokensOnlyWithTheFlag) {
  auto plain = RunLlmsync("tokenize --model " + model_ + " --text '<|im_end|>'");
  EXPECT_EQ(plain.exit_code, 0) << plain.out;
  EXPECT_EQ(plain.out.find("269"), std::string::npos) << plain.out;
  auto special = RunLlmsync("tokenize --model " + model_ + " --special --bos --text '<|im_end|>hello'");
  EXPECT_EQ(special.out, "[267, 269, 259]\n");
}

TEST_F(TokenizeCliTest, DecodePrintsTheTextExactly) {
  auto r = RunLlmsync("tokenize --model " + model_ + " --decode 259,266,10");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "hello world\n");
}

TEST_F(TokenizeCliTest, ReadsAFileAndRejectsInvalidUtf8) {
  const std::string good = dir_.File("good.txt");
  const std::string bad = dir_.File("bad.txt");
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), good, "hello\n").IsOk());
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), bad, "ab\xFF").IsOk());
  EXPECT_EQ(RunLlmsync("tokenize --model " + model_ + " --file " + good).out, "[259, 10]\n");
  auto r = RunLlmsync("tokenize --model " + model_ + " --file " + bad);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not valid UTF-8"), std::string::npos) << r.out;
}

TEST_F(TokenizeCliTest, BadInputIsAClearErrorAndANonZeroExit) {
  auto out_of_range = RunLlmsync("tokenize --model " + model_ + " --decode 1,99999");
  EXPECT_EQ(out_of_range.exit_code, 1);
  EXPECT_NE(out_of_range.out.find("token id 99999 is outside the vocabulary"), std::string::npos)
      << out_of_range.out;
  auto not_a_number = RunLlmsync("tokenize --model " + model_ + " --decode 1,x");
  EXPECT_EQ(not_a_number.exit_code, 2);
  EXPECT_NE(not_a_number.out.find("'x' is not a token id"), std::string::npos) << not_a_number.out;
  auto two_inputs = RunLlmsync("tokenize --model " + model_ + " --text a --decode 1");
  EXPECT_EQ(two_inputs.exit_code, 2);
  auto missing = RunLlmsync("tokenize --model " + dir_.File("absent.gguf") + " --text a");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("absent.gguf"), std::string::npos) << missing.out;
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), dir_.File("bad.gguf"), "not a gguf file").IsOk());
  auto not_gguf = RunLlmsync("tokenize --model " + dir_.File("bad.gguf") + " --text a");
  EXPECT_EQ(not_gguf.exit_code, 1);
  EXPECT_NE(not_gguf.out.find("error: "), std::string::npos) << not_gguf.out;
}

TEST_F(TokenizeCliTest, BenchPrintsJsonAndRoundTrips) {
  auto r = RunLlmsync("bench tokenizer --model " + model_ + " --mb 0.05 --reps 1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("{\"benchmark\": \"tokenizer\"", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("\"round_trip\": true"), std::string::npos) << r.out;
  EXPECT_EQ(RunLlmsync("bench tokenizer --model " + model_ + " --mb 0").exit_code, 2);
}

}  // namespace
}  // namespace llmsync::text
