// A stand-in for libFuzzer's driver in ordinary builds: feeds every file of the given corpus
// directories (or files) to LLVMFuzzerTestOneInput, then `--iterations N` inputs made by seeded
// random mutations of them (bit flips, truncations, splices, random bytes). Deterministic: the
// same corpus gives the same inputs, so a failure reproduces.
//
// Thread safety: single-threaded program.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
// Optional, as in libFuzzer: one-time setup before the first input.
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

using Input = std::vector<std::uint8_t>;

void LoadPath(const std::filesystem::path& path, std::vector<Input>& out) {
  if (std::filesystem::is_directory(path)) {
    for (const auto& entry : std::filesystem::directory_iterator(path)) LoadPath(entry.path(), out);
    return;
  }
  std::ifstream in(path, std::ios::binary);
  out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Input Mutate(const std::vector<Input>& corpus, std::mt19937_64& rng) {
  Input x = corpus.empty() ? Input{} : corpus[rng() % corpus.size()];
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    switch (rng() % 5) {
      case 0:  // flip a bit
        if (!x.empty()) x[rng() % x.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
        break;
      case 1:  // truncate
        if (!x.empty()) x.resize(rng() % x.size());
        break;
      case 2:  // overwrite a byte with an interesting value
        if (!x.empty()) {
          const std::uint8_t kInteresting[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
          x[rng() % x.size()] = kInteresting[rng() % 5];
        }
        break;
      case 3: {  // insert random bytes
        std::size_t at = x.empty() ? 0 : rng() % (x.size() + 1);
        std::size_t n = 1 + rng() % 16;
        Input bytes(n);
        for (auto& b : bytes) b = static_cast<std::uint8_t>(rng());
        x.insert(x.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(), bytes.end());
        break;
      }
      default:  // splice with another corpus entry
        if (!corpus.empty()) {
          const Input& other = corpus[rng() % corpus.size()];
          std::size_t keep = x.empty() ? 0 : rng() % x.size();
          x.resize(keep);
          if (!other.empty()) {
            std::size_t from = rng() % other.size();
            x.insert(x.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
          }
        }
        break;
    }
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  long iterations = 0;
  std::vector<Input> corpus;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
      iterations = std::strtol(argv[++i], nullptr, 10);
    } else {
      LoadPath(argv[i], corpus);
    }
  }
  for (const Input& x : corpus) LLVMFuzzerTestOneInput(x.data(), x.size());
  std::mt19937_64 rng(0x11a5c);
  for (long i = 0; i < iterations; ++i) {
    Input x = Mutate(corpus, rng);
    LLVMFuzzerTestOneInput(x.data(), x.size());
  }
  std::printf("fuzz replay: %zu corpus inputs, %ld mutations, no crash\n", corpus.size(), iterations);
  return 0;
}
