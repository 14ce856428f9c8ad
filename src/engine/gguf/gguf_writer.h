// GgufWriter: builds a GGUF version 3 file (metadata, tensor infos, aligned tensor data) and writes
// it atomically through the Env.
//
// Values are encoded as they are set, so any GgufValue read from another file (for example a
// vocabulary's tokenizer.* keys) can be copied verbatim with CopyValue. Setting a key twice
// replaces its value in place; keys keep their first insertion order.
//
// Thread safety: single-threaded builder.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/env.h"
#include "engine/ggml_type.h"
#include "engine/gguf/gguf_reader.h"

namespace llmsync::engine {

class GgufWriter {
 public:
  void SetString(std::string_view key, std::string_view value);
  void SetUint32(std::string_view key, std::uint32_t value);
  void SetInt32(std::string_view key, std::int32_t value);
  void SetUint64(std::string_view key, std::uint64_t value);
  void SetFloat32(std::string_view key, float value);
  void SetBool(std::string_view key, bool value);
  void SetStringArray(std::string_view key, const std::vector<std::string>& values);
  void SetFloat32Array(std::string_view key, const std::vector<float>& values);
  void SetInt32Array(std::string_view key, const std::vector<std::int32_t>& values);
  void CopyValue(std::string_view key, const GgufValue& value);

  // REQUIRES: dims[0] is a multiple of the type's block size and data.size() equals the tensor's
  // byte size; otherwise kInvalidArgument.
  Status AddTensor(std::string_view name, GgmlType type, const std::vector<std::int64_t>& dims,
                   std::vector<std::uint8_t> data);

  // The complete file image (for tests and small files).
  std::string Serialize() const;
  // Streams the file to a temporary beside `path`, syncs it and renames it into place.
  Status WriteTo(Env* env, const std::string& path) const;

  static constexpr std::uint32_t kAlignment = 32;

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<std::int64_t> dims;
    std::vector<std::uint8_t> data;
  };

  void Put(std::string_view key, std::string encoded_type_and_value);
  // Everything before the first tensor's data, padded to the alignment.
  std::string SerializeHeader() const;

  std::vector<std::pair<std::string, std::string>> kvs_;  // key, encoded type + value
  std::unordered_map<std::string, std::size_t> kv_index_;
  std::vector<Tensor> tensors_;
};

}  // namespace llmsync::engine
