// Tiny, hand-checkable tokenizer vocabularies built in memory with GgufWriter, for the unit tests
// and the fuzz target (which must not depend on ../shared).
//
//   TinyBpe(): byte-level BPE ("gpt2", pre "gpt-2"): the 256 byte tokens (id = byte), then the merges
//     h+e, l+l, he+ll, hell+o, Ġ+h, Ġ+hello, o+r, w+or, wor+l, worl+d, Ġ+world (ranks 0..10), then
//     control tokens <|endoftext|> (bos = eos), <|im_start|>, <|im_end|>, and user-defined <tool>.
//   TinySpm(): SentencePiece ("llama"): <unk>, <s>, </s>, the 256 <0xAB> byte tokens (id = 3 + byte),
//     then scored pieces spelling "▁hello" and "▁world", and user-defined <tool>.
//
// Thread safety: the builders are pure; a TestTokenizer is immutable once built.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "text/byte_unicode.h"
#include "text/tokenizer.h"

namespace llmsync::text::test_vocab {

inline std::string ByteSpelling(int b) {
  std::string s;
  const char c = static_cast<char>(b);
  AppendByteLevel(std::string_view(&c, 1), &s);
  return s;
}

struct TinyBpeIds {
  static constexpr TokenId kHe = 256, kLl = 257, kHell = 258, kHello = 259, kSpaceH = 260, kSpaceHello = 261,
                           kOr = 262, kWor = 263, kWorl = 264, kWorld = 265, kSpaceWorld = 266,
                           kEndOfText = 267, kImStart = 268, kImEnd = 269, kTool = 270;
};

inline engine::GgufWriter TinyBpeWriter() {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(ByteSpelling(b));
    types.push_back(1);
  }
  const std::string g = ByteSpelling(' ');  // "Ġ"
  const std::vector<std::pair<std::string, std::string>> merges = {
      {"h", "e"}, {"l", "l"},  {"he", "ll"}, {"hell", "o"}, {g, "h"},     {g, "hello"},
      {"o", "r"}, {"w", "or"}, {"wor", "l"}, {"worl", "d"}, {g, "world"},
  };
  std::vector<std::string> merge_lines;
  for (const auto& [a, b] : merges) {
    tokens.push_back(a + b);
    types.push_back(1);
    merge_lines.push_back(a + " " + b);
  }
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    tokens.push_back(t);
    types.push_back(3);
  }
  tokens.push_back("<tool>");
  types.push_back(4);

  engine::GgufWriter w;
  w.SetString("general.architecture", "gpt2");
  w.SetString("tokenizer.ggml.model", "gpt2");
  w.SetString("tokenizer.ggml.pre", "gpt-2");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetStringArray("tokenizer.ggml.merges", merge_lines);
  w.SetUint32("tokenizer.ggml.bos_token_id", TinyBpeIds::kEndOfText);
  w.SetUint32("tokenizer.ggml.eos_token_id", TinyBpeIds::kEndOfText);
  return w;
}

struct TinySpmIds {
  static constexpr TokenId kUnk = 0, kBos = 1, kEos = 2, kByte0 = 3;
  static constexpr TokenId kSpace = 259, kH = 260, kE = 261, kL = 262, kO = 263, kW = 264, kR = 265, kD = 266,
                           kHe = 267, kLl = 268, kHell = 269, kHello = 270, kSpaceHello = 271, kSpaceW = 272,
                           kOr = 273, kSpaceWor = 274, kLd = 275, kSpaceWorld = 276, kTool = 277;
};

inline engine::GgufWriter TinySpmWriter() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<std::int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  const std::string m = "\xE2\x96\x81";  // "▁"
  const std::vector<std::pair<std::string, float>> pieces = {
      {m, -1},           {"h", -2},     {"e", -2},  {"l", -2},        {"o", -2},    {"w", -2},
      {"r", -2},         {"d", -2},     {"he", -3}, {"ll", -4},       {"hell", -5}, {"hello", -6},
      {m + "hello", -7}, {m + "w", -8}, {"or", -9}, {m + "wor", -10}, {"ld", -11},  {m + "world", -12},
  };
  for (const auto& [text, score] : pieces) {
    tokens.push_back(text);
    scores.push_back(score);
    types.push_back(1);
  }
  tokens.push_back("<tool>");
  scores.push_back(0);
  types.push_back(4);

  engine::GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetString("tokenizer.ggml.model", "llama");
  w.SetStringArray("tokenizer.ggml.tokens", tokens);
  w.SetFloat32Array("tokenizer.ggml.scores", scores);
  w.SetInt32Array("tokenizer.ggml.token_type", types);
  w.SetUint32("tokenizer.ggml.bos_token_id", TinySpmIds::kBos);
  w.SetUint32("tokenizer.ggml.eos_token_id", TinySpmIds::kEos);
  w.SetUint32("tokenizer.ggml.unknown_token_id", TinySpmIds::kUnk);
  w.SetBool("tokenizer.ggml.add_bos_token", true);
  return w;
}

// Serializes a writer and loads its tokenizer; the image is kept alive beside the parsed file.
struct TestTokenizer {
  std::string image;
  std::unique_ptr<engine::GgufFile> file;
  std::unique_ptr<Tokenizer> tokenizer;
  Status status;
};

inline std::unique_ptr<TestTokenizer> LoadTestTokenizer(const engine::GgufWriter& writer) {
  auto t = std::make_unique<TestTokenizer>();
  t->image = writer.Serialize();
  auto file =
      engine::GgufFile::Parse({reinterpret_cast<const std::uint8_t*>(t->image.data()), t->image.size()});
  if (!file.IsOk()) {
    t->status = file.GetStatus();
    return t;
  }
  t->file = std::move(file).Value();
  auto tokenizer = LoadTokenizer(*t->file);
  if (!tokenizer.IsOk()) {
    t->status = tokenizer.GetStatus();
    return t;
  }
  t->tokenizer = std::move(tokenizer).Value();
  return t;
}

}  // namespace llmsync::text::test_vocab
