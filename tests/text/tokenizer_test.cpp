// Tokenizer behaviour on small in-memory vocabularies (tokenizer_test_vocab.h), where every
// expected id can be checked by hand: merge order, special tokens, BOS/EOS, SentencePiece prefix
// and byte fallback, invalid input, and loading errors.
#include <gtest/gtest.h>

#include <thread>

#include "text/bpe/bpe.h"
#include "text/tokenizer.h"
#include "tokenizer_test_vocab.h"

namespace llmsync::text {
namespace {

using test_vocab::LoadTestTokenizer;
using test_vocab::TinyBpeIds;
using test_vocab::TinySpmIds;
using Ids = std::vector<TokenId>;

class TinyBpeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loaded_ = LoadTestTokenizer(test_vocab::TinyBpeWriter());
    ASSERT_NE(loaded_->tokenizer, nullptr) << loaded_->status.ToString();
    tok_ = loaded_->tokenizer.get();
  }

  Ids Encode(std::string_view text, const EncodeOptions& options = {}) {
    auto ids = tok_->Encode(text, options);
    EXPECT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
    return ids.IsOk() ? *ids : Ids{};
  }
  std::string Decode(const Ids& ids, const DecodeOptions& options = {}) {
    auto text = tok_->Decode(ids, options);
    EXPECT_TRUE(text.IsOk()) << text.GetStatus().ToString();
    return text.IsOk() ? *text : "";
  }

  std::unique_ptr<test_vocab::TestTokenizer> loaded_;
  const Tokenizer* tok_ = nullptr;
};

TEST_F(TinyBpeTest, MergesByRankAcrossStaleCandidates) {
  // " hello": Ġ+h (rank 4) is queued first but goes stale when h+e (rank 0) wins; the word still
  // ends as the single token Ġhello.
  EXPECT_EQ(Encode("hello"), (Ids{TinyBpeIds::kHello}));
  EXPECT_EQ(Encode(" hello"), (Ids{TinyBpeIds::kSpaceHello}));
  EXPECT_EQ(Encode("hello world"), (Ids{TinyBpeIds::kHello, TinyBpeIds::kSpaceWorld}));
  EXPECT_EQ(Encode("help"), (Ids{TinyBpeIds::kHe, 'l', 'p'}));
}

TEST_F(TinyBpeTest, EqualRanksMergeLeftmostFirst) {
  EXPECT_EQ(Encode("lll"), (Ids{TinyBpeIds::kLl, 'l'}));
  EXPECT_EQ(Encode("llll"), (Ids{TinyBpeIds::kLl, TinyBpeIds::kLl}));
}

TEST_F(TinyBpeTest, SecondEncodeOfAWordComesFromTheCacheUnchanged) {
  const Ids first = Encode("hello hello hello world");
  EXPECT_EQ(Encode("hello hello hello world"), first);
  EXPECT_EQ(first, (Ids{TinyBpeIds::kHello, TinyBpeIds::kSpaceHello, TinyBpeIds::kSpaceHello,
                        TinyBpeIds::kSpaceWorld}));
}

TEST_F(TinyBpeTest, PreTokenizerKeepsWordsApart) {
  // The gpt-2 regex splits "he,llo" into he | , | llo: hell+o cannot form across the comma.
  EXPECT_EQ(Encode("hello,world"), (Ids{TinyBpeIds::kHello, ',', TinyBpeIds::kWorld}));
  EXPECT_EQ(Encode("he,llo"), (Ids{TinyBpeIds::kHe, ',', TinyBpeIds::kLl, 'o'}));
}

TEST_F(TinyBpeTest, ControlTokensAreTextUnlessParseSpecial) {
  const std::string text = "<|im_start|>hello<|im_end|>";
  const Ids plain = Encode(text);
  for (TokenId id : plain) {
    EXPECT_NE(id, TinyBpeIds::kImStart);
    EXPECT_NE(id, TinyBpeIds::kImEnd);
  }
  EXPECT_EQ(Decode(plain), text);

  EncodeOptions special;
  special.parse_special = true;
  EXPECT_EQ(Encode(text, special), (Ids{TinyBpeIds::kImStart, TinyBpeIds::kHello, TinyBpeIds::kImEnd}));
  EXPECT_EQ(Decode(Encode(text, special)), text);
}

TEST_F(TinyBpeTest, UserDefinedTokensMatchByDefaultAndCanBeTurnedOff) {
  EXPECT_EQ(Encode("<tool>hello"), (Ids{TinyBpeIds::kTool, TinyBpeIds::kHello}));
  EncodeOptions off;
  off.match_user_defined = false;
  const Ids spelled = Encode("<tool>hello", off);
  EXPECT_EQ(spelled.front(), '<');
  EXPECT_EQ(Decode(spelled), "<tool>hello");
}

TEST_F(TinyBpeTest, LongestSpecialTokenWinsAtAPosition) {
  EncodeOptions special;
  special.parse_special = true;
  // "<|endoftext|>" and "<|im_end|>" share the prefix "<|"; each matches only itself.
  EXPECT_EQ(Encode("<|endoftext|><|im_end|>", special), (Ids{TinyBpeIds::kEndOfText, TinyBpeIds::kImEnd}));
  EXPECT_EQ(Encode("<|im_end", special).size(), 8u);  // incomplete: plain text
}

TEST_F(TinyBpeTest, BosAndEosOnlyWhenAsked) {
  EncodeOptions both;
  both.add_bos = true;
  both.add_eos = true;
  EXPECT_EQ(Encode("hello", both), (Ids{TinyBpeIds::kEndOfText, TinyBpeIds::kHello, TinyBpeIds::kEndOfText}));
  EXPECT_FALSE(tok_->Specials().add_bos);  // gpt-2's family default
  DecodeOptions quiet;
  quiet.render_special = false;
  EXPECT_EQ(Decode(Encode("hello", both), quiet), "hello");
  EXPECT_EQ(Decode(Encode("hello", both)), "<|endoftext|>hello<|endoftext|>");
}

TEST_F(TinyBpeTest, InvalidUtf8IsRejectedWithItsOffset) {
  for (const std::string& bad : {std::string("ab\xFF"), std::string("\xC0\x80"), std::string("x\xED\xA0\x80"),
                                 std::string("abc\xE2\x82")}) {
    auto ids = tok_->Encode(bad);
    ASSERT_FALSE(ids.IsOk());
    EXPECT_EQ(ids.GetStatus().Code(), StatusCode::kInvalidArgument);
    EXPECT_NE(ids.GetStatus().Message().find("offset"), std::string::npos) << ids.GetStatus().ToString();
  }
  EXPECT_NE(tok_->Encode("x\xED\xA0\x80").GetStatus().Message().find("offset 1"), std::string::npos);
}

TEST_F(TinyBpeTest, OutOfRangeIdsAreAnErrorNotACrash) {
  for (TokenId bad : {-1, tok_->VocabSize(), 1 << 30}) {
    auto text = tok_->Decode(Ids{TinyBpeIds::kHello, bad});
    ASSERT_FALSE(text.IsOk());
    EXPECT_EQ(text.GetStatus().Code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(tok_->TokenText(bad).IsOk());
  }
}

TEST_F(TinyBpeTest, EveryByteRoundTrips) {
  std::string all;
  for (int b = 0; b < 128; ++b) all.push_back(static_cast<char>(b));
  all += "\xC3\xA9\xE4\xBD\xA0\xF0\x9F\x98\x81 caf\xC3\xA9";
  EXPECT_EQ(Decode(Encode(all)), all);
  // Any id sequence decodes, even one that ends inside a character.
  EXPECT_EQ(Decode(Ids{0xF0, 0x9F}), "\xF0\x9F");
}

TEST_F(TinyBpeTest, ConcurrentEncodesAgree) {
  const std::string text = "hello world, hello <tool> worlds lll " + std::string(200, 'l');
  const Ids expected = Encode(text);
  std::vector<Ids> results(4);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) results[t] = *tok_->Encode(text);
    });
  }
  for (auto& th : threads) th.join();
  for (const Ids& r : results) EXPECT_EQ(r, expected);
}

class TinySpmTest : public TinyBpeTest {
 protected:
  void SetUp() override {
    loaded_ = LoadTestTokenizer(test_vocab::TinySpmWriter());
    ASSERT_NE(loaded_->tokenizer, nullptr) << loaded_->status.ToString();
    tok_ = loaded_->tokenizer.get();
  }
};

TEST_F(TinySpmTest, MergesByScoreWithASpacePrefix) {
  EXPECT_EQ(Encode("hello world"), (Ids{TinySpmIds::kSpaceHello, TinySpmIds::kSpaceWorld}));
  EXPECT_EQ(Decode(Encode("hello world")), "hello world");
  EXPECT_TRUE(tok_->Specials().add_bos);
  EXPECT_EQ(tok_->ModelName(), "llama");
}

TEST_F(TinySpmTest, ContinuationsHaveNoPrefix) {
  EncodeOptions cont;
  cont.space_prefix = false;
  EXPECT_EQ(Encode("hello", cont), (Ids{TinySpmIds::kHello}));
  DecodeOptions keep;
  keep.strip_space_prefix = false;
  EXPECT_EQ(Decode(Encode("hello"), keep), " hello");
  EXPECT_EQ(Decode(Ids{TinySpmIds::kHello}, keep), "hello");
}

TEST_F(TinySpmTest, UnknownCharactersFallBackToBytes) {
  const Ids ids = Encode("h\xC3\xA9");  // "hé"
  EXPECT_EQ(ids,
            (Ids{TinySpmIds::kSpace, TinySpmIds::kH, TinySpmIds::kByte0 + 0xC3, TinySpmIds::kByte0 + 0xA9}));
  EXPECT_EQ(Decode(ids), "h\xC3\xA9");
}

TEST_F(TinySpmTest, LeadingAndRepeatedSpacesRoundTrip) {
  for (const char* text : {" hello", "  hello  world ", "", " ", "\n", "hello\n\nworld"}) {
    EXPECT_EQ(Decode(Encode(text)), text) << "'" << text << "'";
  }
  EXPECT_EQ(Encode(" hello"), (Ids{TinySpmIds::kSpace, TinySpmIds::kSpaceHello}));
}

TEST_F(TinySpmTest, RunsAfterSpecialTokensGetTheirOwnPrefix) {
  EncodeOptions special;
  special.parse_special = true;
  special.add_bos = true;
  const Ids ids = Encode("hello</s>world", special);
  EXPECT_EQ(ids, (Ids{TinySpmIds::kBos, TinySpmIds::kSpaceHello, TinySpmIds::kEos, TinySpmIds::kSpaceWorld}));
  EXPECT_EQ(Decode(ids), "<s>hello</s>world");
  DecodeOptions quiet;
  quiet.render_special = false;
  EXPECT_EQ(Decode(ids, quiet), "helloworld");
  // A user-defined token is a boundary too.
  EXPECT_EQ(Encode("hello<tool>world"),
            (Ids{TinySpmIds::kSpaceHello, TinySpmIds::kTool, TinySpmIds::kSpaceWorld}));
  EXPECT_EQ(Decode(Encode("hello<tool>world")), "hello<tool>world");
}

TEST_F(TinySpmTest, ALiteralSpaceMarkerReadsAsASpace) {
  // The documented SentencePiece exception to round-tripping.
  EXPECT_EQ(Decode(Encode("a\xE2\x96\x81"
                          "b")),
            "a b");
}

TEST(SpmWordSplitTest, TokensSpanningASpaceDisableWordSplitting) {
  // "x▁y" spans the "▁" between two words, so this vocabulary must be merged run-wide: x+▁ (5), then
  // x▁+y (10). Merging "▁x" and "▁y" separately would give four tokens.
  engine::GgufWriter w;
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens",
                   {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "x", "y", "x\xE2\x96\x81", "x\xE2\x96\x81y"});
  w.SetFloat32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -2, 5, 10});
  w.SetInt32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 1, 1, 1});
  w.SetUint32("tokenizer.ggml.unknown_token_id", 0);
  auto t = LoadTestTokenizer(w);
  ASSERT_NE(t->tokenizer, nullptr) << t->status.ToString();
  EXPECT_EQ(*t->tokenizer->Encode("x y"), (Ids{3, 7}));
  EXPECT_EQ(*t->tokenizer->Decode(Ids{3, 7}), "x y");
  EXPECT_EQ(*t->tokenizer->Encode("x z"), (Ids{3, 6, 0}));  // x+▁ still merges; z is <unk> (no byte tokens)
}

// --- loading ---

Status LoadStatus(const engine::GgufWriter& w) {
  auto t = LoadTestTokenizer(w);
  return t->tokenizer ? Status::Ok() : t->status;
}

TEST(TokenizerLoadTest, UnsupportedModelAndPreTokenizerAreNamed) {
  auto w = test_vocab::TinyBpeWriter();
  w.SetString("tokenizer.ggml.pre", "klingon");
  Status s = LoadStatus(w);
  EXPECT_EQ(s.Code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.Message().find("klingon"), std::string::npos);

  w.SetString("tokenizer.ggml.model", "bert");
  s = LoadStatus(w);
  EXPECT_EQ(s.Code(), StatusCode::kUnimplemented);
  EXPECT_NE(s.Message().find("bert"), std::string::npos);
}

TEST(TokenizerLoadTest, MissingOrMalformedMetadataIsAnError) {
  engine::GgufWriter empty;
  empty.SetString("general.architecture", "llama");
  EXPECT_EQ(LoadStatus(empty).Code(), StatusCode::kNotFound);

  auto short_scores = test_vocab::TinySpmWriter();
  short_scores.SetFloat32Array("tokenizer.ggml.scores", {0.0f, 1.0f});
  EXPECT_EQ(LoadStatus(short_scores).Code(), StatusCode::kInvalidArgument);

  auto duplicate = test_vocab::TinySpmWriter();
  duplicate.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "a"});
  duplicate.SetFloat32Array("tokenizer.ggml.scores", {0, 0, 0});
  duplicate.SetInt32Array("tokenizer.ggml.token_type", {1, 1, 1});
  EXPECT_EQ(LoadStatus(duplicate).Code(), StatusCode::kInvalidArgument);

  auto tokens_not_strings = test_vocab::TinySpmWriter();
  tokens_not_strings.SetInt32Array("tokenizer.ggml.tokens", {1, 2, 3});
  EXPECT_EQ(LoadStatus(tokens_not_strings).Code(), StatusCode::kInvalidArgument);

  auto no_merges = test_vocab::TinyBpeWriter();
  no_merges.SetInt32Array("tokenizer.ggml.merges", {});
  EXPECT_FALSE(LoadStatus(no_merges).IsOk());

  auto bos_required = test_vocab::TinySpmWriter();
  bos_required.SetUint32("tokenizer.ggml.bos_token_id", 1u << 20);  // outside: ignored with a warning
  EXPECT_EQ(LoadStatus(bos_required).Code(), StatusCode::kInvalidArgument);  // but add_bos_token needs it
}

TEST(TokenizerLoadTest, OutOfRangeSpecialIdsAreIgnored) {
  auto w = test_vocab::TinyBpeWriter();
  w.SetUint32("tokenizer.ggml.eos_token_id", 99999);
  auto t = LoadTestTokenizer(w);
  ASSERT_NE(t->tokenizer, nullptr) << t->status.ToString();
  EXPECT_FALSE(t->tokenizer->Specials().eos.has_value());
  EncodeOptions eos;
  eos.add_eos = true;
  EXPECT_EQ(t->tokenizer->Encode("hello", eos).GetStatus().Code(), StatusCode::kInvalidArgument);
}

TEST(TokenizerLoadTest, EndOfTurnIsFoundByItsText) {
  auto t = LoadTestTokenizer(test_vocab::TinyBpeWriter());
  ASSERT_NE(t->tokenizer, nullptr);
  // No eot_token_id in the file: the known end-of-turn texts are tried in order, "<|im_end|>" before
  // "<|endoftext|>" (ChatML models have both, and end turns with the first).
  EXPECT_EQ(t->tokenizer->Specials().eot, std::optional<TokenId>(TinyBpeIds::kImEnd));
  EXPECT_TRUE(t->tokenizer->IsEndOfGeneration(TinyBpeIds::kImEnd));
  EXPECT_TRUE(t->tokenizer->IsEndOfGeneration(TinyBpeIds::kEndOfText));  // eos
  EXPECT_FALSE(t->tokenizer->IsEndOfGeneration(TinyBpeIds::kHello));
}

TEST(TokenizerLoadTest, MergesThatAreNotTokensAreSkipped) {
  auto w = test_vocab::TinyBpeWriter();
  std::vector<std::string> merges = {"h e", "x yz", "nospace", "l l"};
  w.SetStringArray("tokenizer.ggml.merges", merges);
  auto t = LoadTestTokenizer(w);
  ASSERT_NE(t->tokenizer, nullptr) << t->status.ToString();
  EXPECT_EQ(static_cast<const BpeTokenizer&>(*t->tokenizer).MergeCount(), 2u);
  EXPECT_EQ(*t->tokenizer->Encode("hell"), (Ids{TinyBpeIds::kHe, TinyBpeIds::kLl}));
}

}  // namespace
}  // namespace llmsync::text
