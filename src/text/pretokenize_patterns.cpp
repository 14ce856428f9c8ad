// The pre-tokenizer table: tokenizer.ggml.pre value -> split regexes.
//
// Sources: the regexes are the ones in each model's tokenizer.json (HF tokenizers), as collected by
// llama.cpp's llama-vocab.cpp for the same tokenizer.ggml.pre names. Where llama.cpp rewrote a regex
// because std::regex lacks a construct (the case-insensitive group "(?i:'s|'t|...)"), the original is
// used here: PCRE2 supports it. Non-ASCII characters are written as \x{...} so the source stays
// ASCII; the deepseek-llm letter class is exactly the cased letters (Lu, Ll, Lt) it lists.
#include "text/pretokenize.h"

namespace llmsync::text {
namespace {

// GPT-2's own regex (also mpt, olmo, jais, phi-2...).
constexpr std::string_view kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))re";

// Llama 3's regex: digits in groups of up to three.
constexpr std::string_view kLlama3 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen2's regex: Llama 3's with single digits.
constexpr std::string_view kQwen2 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kDeepseekLlmLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF})re"
    R"re(\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1})re"
    R"re(\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5})re"
    R"re(\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A})re"
    R"re(\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B})re"
    R"re(\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC})re"
    R"re(\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})re"
    R"re(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134})re"
    R"re(\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})re"
    R"re(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787})re"
    R"re(\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A})re"
    R"re(\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2})re"
    R"re(\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+)re";

// CJK ideographs (and the ranges below them), Hangul syllables: deepseek's "keep together" class.
constexpr std::string_view kDeepseekCjk = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

// Mistral's tekken and GPT-4o / Llama 4: case-aware words.
constexpr std::string_view kTekken =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)re"
    R"re(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)re"
    R"re(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)re"
    R"re(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)re"
    R"re(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

constexpr std::string_view kSeedCoder =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// BLOOM-style: anything but whitespace and sentence punctuation (ASCII and CJK, Devanagari, Arabic).
constexpr std::string_view kBloom =
    R"re( ?[^(\s|.,!?\x{2026}\x{3002}\x{FF0C}\x{3001}\x{964}\x{6D4}\x{60C})]+)re";

struct Family {
  std::string_view canonical;
  std::vector<std::string_view> names;  // tokenizer.ggml.pre values
  std::vector<std::string_view> regexes;
  bool ignore_merges = false;
  bool add_bos = false;
  bool nfc = false;  // tokenizer.json has an NFC normalizer
};

const std::vector<Family>& Families() {
  static const std::vector<Family> kFamilies = {
      {"default",
       {"default"},
       {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", R"re([0-9][0-9][0-9])re"}},
      {"llama3",
       {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {kLlama3},
       /*ignore_merges=*/true,
       /*add_bos=*/true},
      {"dbrx", {"dbrx", "smaug-bpe"}, {kLlama3}},
      {"chatglm4", {"glm4", "chatglm-bpe"}, {kLlama3}},
      {"deepseek-llm",
       {"deepseek-llm"},
       {R"re([\r\n])re", kDeepseekLlmLetters,
        R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re",
        R"re(\s+$)re", kDeepseekCjk, R"re(\p{N}+)re"}},
      {"deepseek-coder",
       {"deepseek-coder"},
       {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kDeepseekCjk, R"re(\p{N})re"}},
      {"falcon", {"falcon"}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, R"re([0-9][0-9][0-9])re"}},
      {"starcoder",
       {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"re(\p{N})re", kGpt2}},
      {"gpt-2",
       {"gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "exaone4", "jina-es", "jina-de", "jina-v2-es",
        "jina-v2-de", "gigachat"},
       {kGpt2}},
      // Qwen2's tokenizer (Qwen2.5, Qwen3, DeepSeek-R1's Qwen distills) normalizes to NFC first.
      {"qwen2", {"qwen2", "deepseek-r1-qwen"}, {kQwen2}, false, false, /*nfc=*/true},
      {"qwen2", {"stablelm2", "hunyuan", "megrez"}, {kQwen2}},
      {"bloom", {"bloom", "poro-chat", "gpt3-finnish"}, {kBloom}},
      {"viking", {"viking"}, {kBloom, R"re(\p{N})re"}},
      {"tekken", {"tekken"}, {kTekken}, /*ignore_merges=*/true, /*add_bos=*/true},
      {"gpt-4o", {"gpt-4o", "llama4"}, {kGpt4o}},
      {"seed-coder", {"seed-coder"}, {kSeedCoder}},
  };
  return kFamilies;
}

}  // namespace

Result<PreTokenizerSpec> FindPreTokenizerSpec(std::string_view pre_name) {
  const std::string_view name = pre_name.empty() ? "default" : pre_name;
  for (const Family& f : Families()) {
    for (std::string_view n : f.names) {
      if (n == name) return PreTokenizerSpec{f.canonical, f.regexes, f.ignore_merges, f.add_bos, f.nfc};
    }
  }
  std::string known;
  for (std::string_view n : KnownPreTokenizerNames()) known += (known.empty() ? "" : ", ") + std::string(n);
  return Status::Unimplemented("pre-tokenizer '" + std::string(name) +
                               "' (tokenizer.ggml.pre) is not supported; supported: " + known);
}

std::vector<std::string_view> KnownPreTokenizerNames() {
  std::vector<std::string_view> names;
  for (const Family& f : Families()) names.insert(names.end(), f.names.begin(), f.names.end());
  return names;
}

}  // namespace llmsync::text
