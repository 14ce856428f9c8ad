// GgufFile: a validated, read-only view of a GGUF file (versions 2 and 3) over a memory map.
//
// Open() maps the file and checks every structure before returning: magic, version, each metadata
// key and value (all thirteen value types, nested arrays), each tensor's name, shape, type, offset
// and alignment, and that every tensor's bytes lie inside the file. A malformed, truncated or
// hostile file yields a Status naming the field and the byte offset; nothing is read out of bounds.
// After Open() succeeds, accessors never fail for structural reasons, only for a missing key or a
// type mismatch.
//
// Strings and tensor data are views into the mapping, valid while the GgufFile lives.
//
// Thread safety: immutable after Open(); any number of threads may read concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/env.h"
#include "engine/ggml_type.h"
#include "llmsync/status.h"

namespace llmsync::engine {

enum class GgufValueType : std::uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view GgufValueTypeName(GgufValueType type);

class GgufValue;

struct GgufArray {
  GgufValueType elem_type = GgufValueType::kUint8;
  std::vector<GgufValue> items;
};

// One metadata value. Integers keep their signedness; the typed getters of GgufFile convert.
class GgufValue {
 public:
  using Storage = std::variant<std::uint64_t, std::int64_t, double, bool, std::string_view, GgufArray>;

  GgufValue(GgufValueType type, Storage storage) : type_(type), storage_(std::move(storage)) {}

  GgufValueType Type() const { return type_; }
  bool IsInteger() const;
  bool IsFloat() const { return type_ == GgufValueType::kFloat32 || type_ == GgufValueType::kFloat64; }
  const Storage& Raw() const { return storage_; }

  // REQUIRES: the value has the matching kind (check Type() first).
  std::string_view AsString() const { return std::get<std::string_view>(storage_); }
  const GgufArray& AsArray() const { return std::get<GgufArray>(storage_); }
  bool AsBool() const { return std::get<bool>(storage_); }
  // REQUIRES: IsInteger() or IsFloat().
  double AsDouble() const;
  // REQUIRES: IsInteger(). Unsigned values above INT64_MAX saturate.
  std::int64_t AsInt64() const;

 private:
  GgufValueType type_;
  Storage storage_;
};

struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  GgmlType type = GgmlType::kF32;
  std::vector<std::int64_t> dims;  // dims[0] is the row length (fastest varying), as in ggml's ne
  std::uint64_t offset = 0;        // relative to the start of the tensor data section
  std::uint64_t n_bytes = 0;
  std::span<const std::uint8_t> data;

  std::int64_t NumElements() const;
  std::int64_t Rows() const { return dims.empty() ? 0 : NumElements() / dims[0]; }
  std::string ShapeString() const;  // "[2048, 32000]"
};

class GgufFile {
 public:
  static constexpr std::uint32_t kDefaultAlignment = 32;

  // Maps and validates the file at `path`.
  static Result<std::unique_ptr<GgufFile>> Open(Env* env, const std::string& path);
  // Validates bytes owned by the caller, which must outlive the returned object (tests, fuzzing).
  static Result<std::unique_ptr<GgufFile>> Parse(std::span<const std::uint8_t> bytes);

  std::uint32_t Version() const { return version_; }
  std::uint64_t Alignment() const { return alignment_; }
  std::uint64_t DataOffset() const { return data_offset_; }
  std::span<const std::uint8_t> FileBytes() const { return bytes_; }

  const std::vector<GgufKeyValue>& Metadata() const { return metadata_; }
  const GgufValue* Find(std::string_view key) const;

  // Typed getters: kNotFound when the key is absent, kInvalidArgument when its type does not fit.
  Result<std::string_view> GetString(std::string_view key) const;
  Result<std::uint64_t> GetUint(std::string_view key) const;  // any non-negative integer type
  Result<std::int64_t> GetInt(std::string_view key) const;    // any integer type that fits
  Result<double> GetFloat(std::string_view key) const;        // float or integer types
  Result<bool> GetBool(std::string_view key) const;
  Result<const GgufArray*> GetArray(std::string_view key) const;
  Result<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  Result<std::vector<float>> GetFloatArray(std::string_view key) const;
  Result<std::vector<std::int64_t>> GetIntArray(std::string_view key) const;

  const std::vector<GgufTensorInfo>& Tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;

 private:
  struct Token {};  // only Open/Parse construct a GgufFile

 public:
  explicit GgufFile(Token /*unused*/) {}

 private:
  Status ParseAll();

  std::unique_ptr<MappedFile> mapping_;  // null when parsing caller-owned bytes
  std::span<const std::uint8_t> bytes_;
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = kDefaultAlignment;
  std::uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> metadata_;
  std::unordered_map<std::string_view, std::size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, std::size_t> tensor_index_;
};

}  // namespace llmsync::engine
