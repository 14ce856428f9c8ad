// The tokenizer test vectors of ../shared/vectors/tokenizer: ggml-vocab-X.gguf with its cases
// (.inp) and the ids the model's own tokenizer gives them (.out). Read by the tokenizer vector
// tests and by the end-to-end tests of real vocabularies (tests/api/real_vocab_test.cpp).
//
// File format: .inp is the cases, each followed by "\n__ggml_vocab_test__\n" (so the newline before
// a separator belongs to the separator, not the case); .out has one line per case, ids separated by
// spaces, an empty line for an empty case.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "../engine/shared_dir.h"

namespace llmsync::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline std::vector<std::string> ParseVectorInputs(const std::string& content) {
  constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
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

inline std::vector<std::vector<std::int32_t>> ParseVectorOutputs(const std::string& content) {
  std::vector<std::vector<std::int32_t>> lines;
  std::istringstream in(content);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::int32_t> ids;
    std::int32_t id = 0;
    while (fields >> id) ids.push_back(id);
    lines.push_back(std::move(ids));
  }
  return lines;
}

// ../shared/vectors/tokenizer/ggml-vocab-<name>.gguf
inline std::string VocabVectorPath(const std::string& name) {
  return SharedDir() + "/vectors/tokenizer/ggml-vocab-" + name + ".gguf";
}

struct VocabVectors {
  std::vector<std::string> inputs;
  std::vector<std::vector<std::int32_t>> outputs;  // one per input
};

inline VocabVectors ReadVocabVectors(const std::string& name) {
  return {ParseVectorInputs(ReadWholeFile(VocabVectorPath(name) + ".inp")),
          ParseVectorOutputs(ReadWholeFile(VocabVectorPath(name) + ".out"))};
}

}  // namespace llmsync::testing
