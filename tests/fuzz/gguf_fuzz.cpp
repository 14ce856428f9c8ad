// Fuzz target: arbitrary bytes parsed as a GGUF file must yield a file or a Status, never a crash
// or an out-of-bounds read; a parsed file's accessors must stay inside the input.
#include <cstdint>

#include "engine/gguf/gguf_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto file = llmsync::engine::GgufFile::Parse({data, size});
  if (!file.IsOk()) return 0;
  std::uint64_t sum = 0;
  for (const auto& kv : (*file)->Metadata()) {
    sum += kv.key.size();
    (void)(*file)->GetString(kv.key);
    (void)(*file)->GetStringArray(kv.key);
    (void)(*file)->GetFloatArray(kv.key);
  }
  for (const auto& t : (*file)->Tensors()) {
    if (!t.data.empty()) sum += t.data.front() + t.data.back();
  }
  return sum == 0xdeadbeef ? 1 : 0;
}
