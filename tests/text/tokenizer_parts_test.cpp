// The tokenizers' building blocks: UTF-8 validation and tails, the GPT-2 byte map, the PCRE2
// pre-tokenizers, and the streaming decoder.
#include <gtest/gtest.h>

#include "text/byte_unicode.h"
#include "text/pretokenize.h"
#include "text/stream_decoder.h"
#include "text/utf8.h"
#include "tokenizer_test_vocab.h"

namespace llmsync::text {
namespace {

using test_vocab::TinyBpeIds;
using test_vocab::TinySpmIds;

TEST(Utf8Test, ValidationFollowsRfc3629) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii\n"));
  EXPECT_TRUE(IsValidUtf8("\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x81\xF4\x8F\xBF\xBF"));
  EXPECT_EQ(FindInvalidUtf8("ab\x80"), std::optional<std::size_t>(2));            // stray continuation
  EXPECT_EQ(FindInvalidUtf8("\xC0\xAF"), std::optional<std::size_t>(0));          // overlong
  EXPECT_EQ(FindInvalidUtf8("\xE0\x80\xAF"), std::optional<std::size_t>(0));      // overlong
  EXPECT_EQ(FindInvalidUtf8("a\xED\xA0\x80"), std::optional<std::size_t>(1));     // surrogate
  EXPECT_EQ(FindInvalidUtf8("\xF4\x90\x80\x80"), std::optional<std::size_t>(0));  // above U+10FFFF
  EXPECT_EQ(FindInvalidUtf8("\xF5\x80\x80\x80"), std::optional<std::size_t>(0));
  EXPECT_EQ(FindInvalidUtf8("ok\xE4\xBD"), std::optional<std::size_t>(2));  // truncated
}

TEST(Utf8Test, IncompleteTailCountsOnlyBytesThatCanStillComplete) {
  EXPECT_EQ(IncompleteUtf8Tail(""), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xC3"), 1u);
  EXPECT_EQ(IncompleteUtf8Tail("a\xE4\xBD"), 2u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8Tail("\xF0\x9F\x98\x81"), 0u);  // complete
  EXPECT_EQ(IncompleteUtf8Tail("a\x80"), 0u);             // can never complete
  EXPECT_EQ(IncompleteUtf8Tail("\xED\xA0"), 0u);          // would be a surrogate
  EXPECT_EQ(IncompleteUtf8Tail("\xFF"), 0u);
}

TEST(Utf8Test, DecodeAndEncodeAreInverse) {
  for (char32_t cp : {U'\0', U'A', U'\u00E9', U'\u4F60', U'\U0001F601', U'\U0010FFFF'}) {
    std::string s;
    AppendUtf8(cp, &s);
    EXPECT_TRUE(IsValidUtf8(s));
    std::size_t pos = 0;
    EXPECT_EQ(DecodeUtf8At(s, &pos), cp);
    EXPECT_EQ(pos, s.size());
  }
}

TEST(ByteUnicodeTest, IsTheGpt2Bijection) {
  EXPECT_EQ(ByteToCodePoint(' '), U'\u0120');   // "Ġ"
  EXPECT_EQ(ByteToCodePoint('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(ByteToCodePoint('A'), U'A');
  EXPECT_EQ(ByteToCodePoint(0xAD), U'\u0143');  // the last of the 68 remapped bytes
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(CodePointToByte(ByteToCodePoint(static_cast<std::uint8_t>(b))), std::optional<std::uint8_t>(b));
  }
  EXPECT_EQ(CodePointToByte(U'\u4F60'), std::nullopt);
  std::string raw;
  for (int b = 0; b < 256; ++b) raw.push_back(static_cast<char>(b));
  std::string spelled;
  AppendByteLevel(raw, &spelled);
  EXPECT_TRUE(IsValidUtf8(spelled));
  std::string back;
  AppendByteLevelDecoded(spelled, &back);
  EXPECT_EQ(back, raw);
}

std::vector<std::string> Split(std::string_view pre_name, std::string_view text) {
  auto spec = FindPreTokenizerSpec(pre_name);
  EXPECT_TRUE(spec.IsOk()) << spec.GetStatus().ToString();
  auto pre = PreTokenizer::Compile(spec->regexes);
  EXPECT_TRUE(pre.IsOk()) << pre.GetStatus().ToString();
  std::vector<std::string_view> pieces;
  EXPECT_TRUE(pre->Split(text, &pieces).IsOk());
  return {pieces.begin(), pieces.end()};
}

TEST(PreTokenizerTest, EveryKnownNameCompilesAndCoversItsInput) {
  const std::string text =
      "Hello, y'all! It's 2026-11-20... \xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C  \n\n"
      "\tfor (int i = 0; i < 10; ++i) { x += 12345; }   \r\n \xF0\x9F\x98\x81 caf\xC3\xA9 "
      "\xD0\x9F\xD1\x80\xD0\xB8";
  for (std::string_view name : KnownPreTokenizerNames()) {
    std::string joined;
    for (const std::string& piece : Split(name, text)) {
      EXPECT_FALSE(piece.empty()) << name;
      joined += piece;
    }
    EXPECT_EQ(joined, text) << name;
  }
  EXPECT_EQ(FindPreTokenizerSpec("").Value().name, "default");
  EXPECT_EQ(FindPreTokenizerSpec("no-such-pre").GetStatus().Code(), StatusCode::kUnimplemented);
}

TEST(PreTokenizerTest, Gpt2SplitsWordsSpacesAndContractions) {
  EXPECT_EQ(Split("gpt-2", "Hello world's  123!!"),
            (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", "!!"}));
  EXPECT_EQ(Split("gpt-2", "a   b"), (std::vector<std::string>{"a", "  ", " b"}));  // \s+(?!\S)
}

TEST(PreTokenizerTest, Llama3GroupsDigitsByThreeAndIgnoresCase) {
  EXPECT_EQ(Split("llama-bpe", "1234567 I'M"), (std::vector<std::string>{"123", "456", "7", " I", "'M"}));
  EXPECT_EQ(Split("qwen2", "123"), (std::vector<std::string>{"1", "2", "3"}));
}

TEST(PreTokenizerTest, RegexSequencesApplyInOrder) {
  // deepseek-coder: newlines first, then letters, punctuation, CJK runs, single digits.
  EXPECT_EQ(Split("deepseek-coder", "ab\n12"), (std::vector<std::string>{"ab", "\n", "1", "2"}));
  // falcon: punctuation runs are cut out first, then the gpt-2 regex, then digit triples.
  EXPECT_EQ(Split("falcon", "x+=12345"), (std::vector<std::string>{"x", "+=", "123", "45"}));
}

TEST(PreTokenizerTest, BadRegexIsAnError) {
  auto pre = PreTokenizer::Compile({"(unclosed"});
  ASSERT_FALSE(pre.IsOk());
  EXPECT_EQ(pre.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pre.GetStatus().Message().find("(unclosed"), std::string::npos);
}

class StreamDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bpe_ = test_vocab::LoadTestTokenizer(test_vocab::TinyBpeWriter());
    spm_ = test_vocab::LoadTestTokenizer(test_vocab::TinySpmWriter());
    ASSERT_NE(bpe_->tokenizer, nullptr);
    ASSERT_NE(spm_->tokenizer, nullptr);
  }

  // Pushes each id and records what came out after each one.
  static std::vector<std::string> Stream(StreamDecoder& d, const std::vector<TokenId>& ids) {
    std::vector<std::string> out;
    for (TokenId id : ids) {
      auto piece = d.Push(id);
      EXPECT_TRUE(piece.IsOk()) << piece.GetStatus().ToString();
      out.push_back(piece.ValueOr(""));
    }
    return out;
  }

  std::unique_ptr<test_vocab::TestTokenizer> bpe_;
  std::unique_ptr<test_vocab::TestTokenizer> spm_;
};

TEST_F(StreamDecoderTest, HoldsBackACharacterSplitAcrossByteTokens) {
  StreamDecoder d(*bpe_->tokenizer);
  // "hi 😁!" with the emoji spelled as its four byte tokens (F0 9F 98 81).
  const std::vector<TokenId> ids = {'h', 'i', ' ', 0xF0, 0x9F, 0x98, 0x81, '!'};
  EXPECT_EQ(Stream(d, ids), (std::vector<std::string>{"h", "i", " ", "", "", "", "\xF0\x9F\x98\x81", "!"}));
  EXPECT_EQ(d.PendingBytes(), 0u);
  EXPECT_EQ(d.Flush(), "");
}

TEST_F(StreamDecoderTest, FlushReturnsAnUnfinishedCharacterAndResets) {
  StreamDecoder d(*bpe_->tokenizer);
  EXPECT_EQ(Stream(d, {TinyBpeIds::kHello, 0xE4, 0xBD}), (std::vector<std::string>{"hello", "", ""}));
  EXPECT_EQ(d.PendingBytes(), 2u);
  EXPECT_EQ(d.Flush(), "\xE4\xBD");
  EXPECT_EQ(d.PendingBytes(), 0u);
}

TEST_F(StreamDecoderTest, InvalidBytesPassThroughAtOnce) {
  StreamDecoder d(*bpe_->tokenizer);
  EXPECT_EQ(Stream(d, {0xFF, 0x80, 'a', 0xE4, 'b'}), (std::vector<std::string>{"\xFF", "\x80", "a", "",
                                                                               "\xE4"
                                                                               "b"}));
}

TEST_F(StreamDecoderTest, BadIdLeavesTheStreamIntact) {
  StreamDecoder d(*bpe_->tokenizer);
  EXPECT_EQ(d.Push(0xE4).ValueOr("x"), "");
  auto bad = d.Push(-5);
  EXPECT_EQ(bad.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(d.PendingBytes(), 1u);
  EXPECT_EQ(Stream(d, {0xBD, 0xA0}), (std::vector<std::string>{"", "\xE4\xBD\xA0"}));
}

TEST_F(StreamDecoderTest, ConcatenationEqualsDecode) {
  const Tokenizer& spm = *spm_->tokenizer;
  EncodeOptions opts;
  opts.add_bos = true;
  opts.parse_special = true;
  const std::string text = "hello \xF0\x9F\x98\x81 world</s>\xC3\xA9 hello";
  const std::vector<TokenId> ids = *spm.Encode(text, opts);
  for (bool strip : {true, false}) {
    DecodeOptions d_opts;
    d_opts.strip_space_prefix = strip;
    StreamDecoder d(spm, d_opts);
    std::string streamed;
    for (const std::string& piece : Stream(d, ids)) streamed += piece;
    streamed += d.Flush();
    EXPECT_EQ(streamed, *spm.Decode(ids, d_opts));
  }
  EXPECT_EQ(*spm.Decode(ids), "<s>" + text);
  EXPECT_EQ(ids[0], TinySpmIds::kBos);
}

}  // namespace
}  // namespace llmsync::text
