// RewriteGguf: copies a GGUF image into a new one while letting a test change metadata or tensors,
// to build the malformed-model cases of the loader tests.
//
// Thread safety: test helper.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"
#include "test_models.h"

namespace llmsync::engine::testing {

struct TensorEdit {
  std::string name;
  GgmlType type;
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> data;
};

struct GgufEdits {
  // Called for each metadata key; return false to drop it. May also set keys on the writer.
  std::function<bool(const GgufKeyValue&, GgufWriter&)> metadata;
  // Called for each tensor; return false to drop it. May change the TensorEdit in place.
  std::function<bool(TensorEdit&)> tensor;
  // Called last, to add keys.
  std::function<void(GgufWriter&)> extra;
};

inline Result<std::string> RewriteGguf(const std::string& image, const GgufEdits& edits) {
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> file, GgufFile::Parse(Bytes(image)));
  GgufWriter w;
  for (const GgufKeyValue& kv : file->Metadata()) {
    if (!edits.metadata || edits.metadata(kv, w)) w.CopyValue(kv.key, kv.value);
  }
  if (edits.extra) edits.extra(w);
  for (const GgufTensorInfo& t : file->Tensors()) {
    TensorEdit e{std::string(t.name), t.type, t.dims,
                 std::vector<std::uint8_t>(t.data.begin(), t.data.end())};
    if (edits.tensor && !edits.tensor(e)) continue;
    LLMSYNC_RETURN_IF_ERROR(w.AddTensor(e.name, e.type, e.dims, std::move(e.data)));
  }
  return w.Serialize();
}

}  // namespace llmsync::engine::testing
