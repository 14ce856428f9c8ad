// The demo model's readable vocabulary: every token decodes to printable ASCII, common words encode
// to one token, and what the server sends back from a random-weight model is text without U+FFFD,
// NUL or control bytes.
#include <gtest/gtest.h>

#include "engine/gguf/gguf_reader.h"
#include "engine/readable_vocab.h"
#include "server_test_env.h"
#include "text/tokenizer.h"

namespace llmsync::testing {
namespace {

bool Readable(std::string_view text) {
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    if (!(b == '\n' || (b >= 0x20 && b < 0x7F))) return false;
  }
  return true;
}

TEST(DemoModelTest, EveryTokenDecodesToPrintableAscii) {
  TestDir dir;
  std::string path = dir.File("demo.gguf");
  ASSERT_TRUE(api::EnsureDemoModel(Env::Default(), path).IsOk());
  auto file = engine::GgufFile::Open(Env::Default(), path);
  ASSERT_TRUE(file.IsOk());
  auto tokenizer = text::LoadTokenizer(**file);
  ASSERT_TRUE(tokenizer.IsOk()) << tokenizer.GetStatus().ToString();
  const text::Tokenizer& t = **tokenizer;
  ASSERT_TRUE(t.Specials().eos.has_value()) << "the demo vocabulary has an EOS";
  for (text::TokenId id = 0; id < t.GetVocab().Size(); ++id) {
    auto piece = t.Decode(std::vector<text::TokenId>{id});
    ASSERT_TRUE(piece.IsOk());
    EXPECT_TRUE(Readable(*piece)) << "token " << id << " decodes to unprintable bytes";
  }
  auto ids = t.Encode("the water and the people", {});
  ASSERT_TRUE(ids.IsOk());
  EXPECT_EQ(ids->size(), 5u) << "one token per common word";
  // Non-ASCII input is unknown to the vocabulary: it encodes (to <unk>) and decodes to nothing.
  auto odd = t.Encode("caf\xC3\xA9", {});
  ASSERT_TRUE(odd.IsOk());
  auto back = t.Decode(*odd);
  ASSERT_TRUE(back.IsOk());
  EXPECT_TRUE(Readable(*back)) << *back;
}

TEST(DemoModelTest, OldDemoModelsAreRebuilt) {
  TestDir dir;
  std::string path = dir.File("demo.gguf");
  engine::MakeTestModelOptions byte_vocab;  // what older versions cached at this path
  ASSERT_TRUE(engine::MakeTestModel(Env::Default(), byte_vocab, path).IsOk());
  ASSERT_TRUE(api::EnsureDemoModel(Env::Default(), path).IsOk());
  auto file = engine::GgufFile::Open(Env::Default(), path);
  ASSERT_TRUE(file.IsOk());
  auto tag = (*file)->GetString("llmsync.test_vocab");
  ASSERT_TRUE(tag.IsOk());
  EXPECT_EQ(*tag, engine::kReadableVocabTag);
}

TEST(DemoModelTest, RepliesAreReadableText) {
  TestDir dir;
  std::string path = dir.File("demo.gguf");
  ASSERT_TRUE(api::EnsureDemoModel(Env::Default(), path).IsOk());
  ServerTestEnv env(path);
  ASSERT_TRUE(env.Start(dir.File("data")).IsOk());
  Json request = {{"model", "demo"},
                  {"messages", {{{"role", "user"}, {"content", "Hello, caf\xC3\xA9!"}}}},
                  {"max_tokens", 200},
                  {"seed", 5}};
  auto [status, body] = env.Post("/v1/chat/completions", request);
  ASSERT_EQ(status, 200) << body;
  std::string text = body["choices"][0]["message"]["content"].get<std::string>();
  EXPECT_TRUE(Readable(text)) << text;
  EXPECT_EQ(text.find("\xEF\xBF\xBD"), std::string::npos) << "no U+FFFD";
  EXPECT_GT(text.size(), 200u) << "mostly whole words: more than a byte per token";
  env.Stop();
}

}  // namespace
}  // namespace llmsync::testing
