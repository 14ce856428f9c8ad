// `llmsync tokenize` (text -> token ids as a JSON array, or ids -> text with --decode) and
// `llmsync bench tokenizer` (encode/decode throughput on ~1 MB of mixed English, Chinese and code,
// as one JSON object): the tokenizers of text/, checkable from outside.
//
// The benchmark text is generated deterministically (a fixed-seed LCG over fixed word lists), so
// runs are comparable across commits. Times are this thread's CPU time (the machine is shared);
// wall time is printed beside it.
#include <time.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "text/tokenizer.h"

namespace llmsync::cli {
namespace {

using text::TokenId;
using text::Tokenizer;

int Fail(const Status& s, int code = 1) {
  std::cerr << "error: " << s.Message() << "\n";
  return code;
}

// "1,2,3" (spaces allowed after commas) -> ids. Range is checked by the tokenizer.
Result<std::vector<TokenId>> ParseIds(std::string_view list) {
  std::vector<TokenId> ids;
  std::size_t at = 0;
  while (at < list.size()) {
    while (at < list.size() && list[at] == ' ') ++at;
    std::size_t end = list.find(',', at);
    if (end == std::string_view::npos) end = list.size();
    TokenId id = 0;
    auto [ptr, ec] = std::from_chars(list.data() + at, list.data() + end, id);
    if (at == end || ec != std::errc() || ptr != list.data() + end) {
      return Status::InvalidArgument("--decode: '" + std::string(list.substr(at, end - at)) +
                                     "' is not a token id (expected e.g. 1,2,3)");
    }
    ids.push_back(id);
    at = end + 1;
  }
  if (ids.empty()) return Status::InvalidArgument("--decode: no token ids");
  return ids;
}

std::string JsonIds(const std::vector<TokenId>& ids) {
  std::string out = "[";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ids[i]);
  }
  return out + "]";
}

struct TokenizeArgs {
  std::string model;
  std::string text;
  std::string file;
  std::string decode;
  bool special = false;
  bool bos = false;
};

int RunTokenize(const TokenizeArgs& args, bool has_text) {
  const int inputs = (has_text ? 1 : 0) + (args.file.empty() ? 0 : 1) + (args.decode.empty() ? 0 : 1);
  if (inputs != 1) {
    return Fail(Status::InvalidArgument("give exactly one of --text, --file or --decode"), 2);
  }
  auto tokenizer = text::LoadTokenizerFromFile(Env::Default(), args.model);
  if (!tokenizer.IsOk()) return Fail(tokenizer.GetStatus());
  const Tokenizer& tok = **tokenizer;

  if (!args.decode.empty()) {
    auto ids = ParseIds(args.decode);
    if (!ids.IsOk()) return Fail(ids.GetStatus(), 2);
    text::DecodeOptions options;
    options.render_special = true;
    auto decoded = tok.Decode(*ids, options);
    if (!decoded.IsOk()) return Fail(decoded.GetStatus());
    std::cout << *decoded;  // exactly the text: no newline added
    return 0;
  }

  std::string input = args.text;
  if (!args.file.empty()) {
    auto content = Env::Default()->ReadFile(args.file);
    if (!content.IsOk()) return Fail(content.GetStatus());
    input = std::move(content).Value();
  }
  text::EncodeOptions options;
  options.parse_special = args.special;
  options.add_bos = args.bos;
  auto ids = tok.Encode(input, options);
  if (!ids.IsOk()) return Fail(ids.GetStatus());
  std::cout << JsonIds(*ids) << "\n";
  return 0;
}

// --- bench tokenizer ---

class Lcg {
 public:
  explicit Lcg(std::uint64_t seed) : state_(seed) {}
  std::uint32_t Next() {
    state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state_ >> 33);
  }
  template <typename T>
  const T& Pick(const std::vector<T>& v) {
    return v[Next() % v.size()];
  }

 private:
  std::uint64_t state_;
};

// A pseudo-word of 1-4 syllables: with the common words below it gives a long-tailed vocabulary
// (thousands of distinct words), so the benchmark is not just word-cache hits.
std::string PseudoWord(Lcg& rng) {
  static const std::vector<std::string_view> kOnsets = {"b", "c",  "d",  "f",  "g",  "h", "j", "k",
                                                        "l", "m",  "n",  "p",  "r",  "s", "t", "v",
                                                        "w", "st", "tr", "ch", "sh", "pl"};
  static const std::vector<std::string_view> kVowels = {"a", "e", "i", "o", "u", "ea", "ou", "io", "y"};
  static const std::vector<std::string_view> kCodas = {"", "", "n", "r", "s", "t", "l", "ng", "rd", "x"};
  std::string w;
  const std::uint32_t syllables = 1 + rng.Next() % 4;
  for (std::uint32_t i = 0; i < syllables; ++i) {
    w += rng.Pick(kOnsets);
    w += rng.Pick(kVowels);
    w += rng.Pick(kCodas);
  }
  return w;
}

// About a third English prose, a third Chinese prose, a third code, in paragraphs.
std::string MixedText(std::size_t bytes) {
  static const std::vector<std::string_view> kWords = {
      "the",     "of",       "and",       "to",       "in",         "is",        "that",    "for",
      "it",      "as",       "with",      "was",      "on",         "be",        "by",      "this",
      "state",   "server",   "model",     "token",    "session",    "branch",    "cache",   "replay",
      "node",    "tree",     "append",    "request",  "response",   "stream",    "client",  "context",
      "history", "quickly",  "carefully", "although", "however",    "important", "system",  "message",
      "value",   "function", "between",   "without",  "because",    "different", "example", "result",
      "people",  "world",    "time",      "year",     "government", "company",   "number",  "question"};
  // Common Chinese characters.
  static const std::vector<std::string_view> kHanzi = {
      "的", "一", "是", "不", "了", "人", "我", "在", "有", "他", "这", "中", "大", "来", "上", "国",
      "个", "到", "说", "们", "为", "子", "和", "你", "地", "出", "道", "也", "时", "年", "得", "就",
      "那", "要", "下", "以", "生", "会", "自", "着", "去", "之", "过", "家", "学", "对", "可", "她",
      "里", "后", "小", "么", "心", "多", "天", "而", "能", "好", "都", "然", "没", "日", "于", "起",
      "模", "型", "状", "态", "缓", "存", "话", "分", "支", "服", "务", "器", "请", "求", "回", "题"};
  static const std::vector<std::string_view> kCodeTemplates = {
      "for (int {a} = 0; {a} < {b}; ++{a}) {\n  {c} += {d}[{a}] * {N};\n}\n",
      "def {a}(self, {b}: str) -> list[int]:\n    return [self.{c}[t] for t in {b}.split()]\n",
      "if ({a}.IsOk() && !{b}.empty()) return {c}.front();\n",
      "const auto {a} = {b}.find({c});\n",
      "    # TODO: handle the empty {a} case\n",
      "std::vector<std::int32_t> {a} = {{N}, {N}, {N}};\n",
      "{a} = np.zeros(({N}, {N}), dtype=np.float16)\n",
      "\tprintf(\"%d {a} in %.3f s\\n\", {b}, {c});\n",
      "SELECT {a}, {b} FROM {c} WHERE {d} = ?1 ORDER BY {a};\n"};
  Lcg rng(20261120);
  auto word = [&] { return rng.Next() % 2 == 0 ? std::string(rng.Pick(kWords)) : PseudoWord(rng); };
  std::string out;
  out.reserve(bytes + 1024);
  while (out.size() < bytes) {
    const std::size_t goal = out.size() + 300 + rng.Next() % 300;
    switch (rng.Next() % 3) {
      case 0: {
        bool sentence_start = true;
        while (out.size() < goal) {
          std::string w = word();
          if (sentence_start) w[0] = static_cast<char>(w[0] - 'a' + 'A');
          out += w;
          if (rng.Next() % 20 == 0) out += " " + std::to_string(rng.Next() % 10000);
          sentence_start = rng.Next() % 12 == 0;
          out += sentence_start ? ". " : (rng.Next() % 9 == 0 ? ", " : " ");
        }
        out += "\n\n";
        break;
      }
      case 1:
        while (out.size() < goal) {
          out += rng.Pick(kHanzi);
          const std::uint32_t r = rng.Next() % 16;
          if (r == 0) out += "\xEF\xBC\x8C";  // fullwidth comma
          if (r == 1) out += "\xE3\x80\x82";  // ideographic full stop
        }
        out += "\n\n";
        break;
      default:
        while (out.size() < goal) {
          // Fill a template's {a}..{d} with identifiers and {N} with numbers.
          const std::string_view t = rng.Pick(kCodeTemplates);
          for (std::size_t i = 0; i < t.size(); ++i) {
            if (t[i] == '{' && i + 2 < t.size() && t[i + 2] == '}') {
              out += t[i + 1] == 'N' ? std::to_string(rng.Next() % 4096)
                                     : word() + (rng.Next() % 3 == 0 ? "_" + word() : "");
              i += 2;
            } else {
              out += t[i];
            }
          }
        }
        out += "\n";
        break;
    }
  }
  return out;
}

std::int64_t ThreadCpuMicros() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

struct Timing {
  std::int64_t cpu_us = 0;
  std::int64_t wall_us = 0;
};

struct BenchTokenizerArgs {
  std::string model;
  double mb = 1.0;
  int repetitions = 3;
};

int RunBenchTokenizer(const BenchTokenizerArgs& args) {
  if (args.mb <= 0 || args.mb > 512 || args.repetitions < 1 || args.repetitions > 100) {
    return Fail(Status::InvalidArgument("--mb must be in (0, 512] and --reps in [1, 100]"), 2);
  }
  Env* env = Env::Default();
  Timing load;
  load.wall_us = env->NowMicros();
  load.cpu_us = ThreadCpuMicros();
  auto loaded = text::LoadTokenizerFromFile(env, args.model);
  if (!loaded.IsOk()) return Fail(loaded.GetStatus());
  load.wall_us = env->NowMicros() - load.wall_us;
  load.cpu_us = ThreadCpuMicros() - load.cpu_us;
  const Tokenizer& tok = **loaded;

  const std::string input = MixedText(static_cast<std::size_t>(args.mb * 1024 * 1024));
  std::vector<TokenId> ids;
  std::vector<Timing> encodes;
  for (int r = 0; r < args.repetitions + 1; ++r) {  // the first run is cold: an empty word cache
    Timing t;
    t.wall_us = env->NowMicros();
    t.cpu_us = ThreadCpuMicros();
    auto result = tok.Encode(input);
    t.wall_us = env->NowMicros() - t.wall_us;
    t.cpu_us = ThreadCpuMicros() - t.cpu_us;
    if (!result.IsOk()) return Fail(result.GetStatus());
    ids = std::move(result).Value();
    encodes.push_back(t);
  }
  Timing decode;
  decode.wall_us = env->NowMicros();
  decode.cpu_us = ThreadCpuMicros();
  auto back = tok.Decode(ids);
  decode.wall_us = env->NowMicros() - decode.wall_us;
  decode.cpu_us = ThreadCpuMicros() - decode.cpu_us;
  if (!back.IsOk()) return Fail(back.GetStatus());

  std::vector<Timing> warm(encodes.begin() + 1, encodes.end());
  std::sort(warm.begin(), warm.end(), [](const Timing& a, const Timing& b) { return a.cpu_us < b.cpu_us; });
  const Timing median = warm[warm.size() / 2];
  const auto n = static_cast<double>(ids.size());
  auto per_s = [](double count, std::int64_t us) {
    return us > 0 ? count * 1e6 / static_cast<double>(us) : 0.0;
  };
  const std::string name = std::string(tok.ModelName()) +
                           (tok.PreTokenizerName().empty() ? "" : "/" + std::string(tok.PreTokenizerName()));
  char json[1536];
  std::snprintf(
      json, sizeof(json),
      "{\"benchmark\": \"tokenizer\", \"model\": \"%s\", \"tokenizer\": \"%s\", \"vocab_size\": %d, "
      "\"input_bytes\": %zu, \"tokens\": %zu, \"bytes_per_token\": %.3f, \"load_s\": %.3f, "
      "\"encode_cold_s\": %.4f, \"encode_cold_tok_s\": %.0f, \"encode_warm_s\": %.4f, "
      "\"encode_warm_tok_s\": %.0f, \"encode_warm_mb_s\": %.2f, \"encode_warm_wall_s\": %.4f, "
      "\"decode_s\": %.4f, \"decode_tok_s\": %.0f, \"repetitions\": %d, \"round_trip\": %s, "
      "\"clock\": \"thread_cpu\"}",
      args.model.c_str(), name.c_str(), tok.VocabSize(), input.size(), ids.size(),
      static_cast<double>(input.size()) / std::max(n, 1.0), static_cast<double>(load.cpu_us) / 1e6,
      static_cast<double>(encodes[0].cpu_us) / 1e6, per_s(n, encodes[0].cpu_us),
      static_cast<double>(median.cpu_us) / 1e6, per_s(n, median.cpu_us),
      per_s(static_cast<double>(input.size()) / (1024.0 * 1024.0), median.cpu_us),
      static_cast<double>(median.wall_us) / 1e6, static_cast<double>(decode.cpu_us) / 1e6,
      per_s(n, decode.cpu_us), args.repetitions, *back == input ? "true" : "false");
  std::cout << json << "\n";
  return *back == input ? 0 : 1;
}

}  // namespace

void AddTokenizeCommands(CLI::App& app, CliState& state) {
  CLI::App* tokenize = app.add_subcommand(
      "tokenize", "Print the token ids of a text as a JSON array, or the text of token ids (--decode)");
  auto args = std::make_shared<TokenizeArgs>();
  tokenize->add_option("--model", args->model, "GGUF file with a tokenizer (tokenizer.ggml.*)")->required();
  CLI::Option* text = tokenize->add_option("--text", args->text, "Text to encode");
  tokenize->add_option("--file", args->file, "Encode the contents of this file (UTF-8)");
  tokenize->add_option("--decode", args->decode, "Token ids to decode, e.g. 1,2,3; prints the text exactly");
  tokenize->add_flag("--special", args->special, "Recognise control tokens such as <|im_start|> in the text");
  tokenize->add_flag("--bos", args->bos, "Prepend the BOS token");
  tokenize->callback([args, text, &state] { state.exit_code = RunTokenize(*args, text->count() > 0); });

  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  CLI::App* bench_tok = bench->add_subcommand(
      "tokenizer", "Encode/decode tokens/s on ~1 MB of mixed English, Chinese and code (JSON)");
  auto bench_args = std::make_shared<BenchTokenizerArgs>();
  bench_tok->add_option("--model", bench_args->model, "GGUF file with a tokenizer")->required();
  bench_tok->add_option("--mb", bench_args->mb, "Size of the generated text in MiB (default 1)");
  bench_tok->add_option("--reps", bench_args->repetitions, "Warm repetitions after the cold run (default 3)");
  bench_tok->callback([bench_args, &state] { state.exit_code = RunBenchTokenizer(*bench_args); });
}

}  // namespace llmsync::cli
