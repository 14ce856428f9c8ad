#include "engine/gguf/gguf_reader.h"

#include <cstring>
#include <limits>

namespace llmsync::engine {
namespace {

constexpr std::uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 4;
constexpr std::uint32_t kMaxDims = 4;
constexpr std::uint64_t kMaxNameBytes = 65535;

// Bounds-checked little-endian reads. Every failure names the field and its offset.
class Cursor {
 public:
  explicit Cursor(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  std::uint64_t Pos() const { return pos_; }
  std::uint64_t Remaining() const { return bytes_.size() - pos_; }

  Status Need(std::uint64_t n, std::string_view what) const {
    if (n > Remaining()) {
      return Status::DataLoss("gguf: truncated " + std::string(what) + " at offset " + std::to_string(pos_) +
                              ": need " + std::to_string(n) + " bytes, " + std::to_string(Remaining()) +
                              " remain");
    }
    return Status::Ok();
  }

  template <typename T>
  Result<T> Read(std::string_view what) {
    LLMSYNC_RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string_view> ReadString(std::string_view what, std::uint64_t max_len) {
    std::uint64_t at = pos_;
    LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t len, Read<std::uint64_t>(what));
    if (len > max_len) {
      return Status::DataLoss("gguf: " + std::string(what) + " at offset " + std::to_string(at) +
                              " claims length " + std::to_string(len) + ", above the limit " +
                              std::to_string(max_len));
    }
    LLMSYNC_RETURN_IF_ERROR(Need(len, what));
    std::string_view s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::uint64_t pos_ = 0;
};

Status Malformed(std::string_view what, std::uint64_t offset, const std::string& problem) {
  return Status::DataLoss("gguf: " + std::string(what) + " at offset " + std::to_string(offset) + ": " +
                          problem);
}

// The fewest bytes one element of `type` occupies, so a claimed count can be checked against the
// bytes that remain before anything is allocated.
std::uint64_t MinElementBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool: return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16: return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32: return 4;
    case GgufValueType::kString: return 8;
    case GgufValueType::kArray: return 12;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64: return 8;
  }
  return 1;
}

Result<GgufValueType> ReadValueType(Cursor& c, std::string_view what) {
  std::uint64_t at = c.Pos();
  LLMSYNC_ASSIGN_OR_RETURN(std::uint32_t raw, c.Read<std::uint32_t>(what));
  if (raw > static_cast<std::uint32_t>(GgufValueType::kFloat64)) {
    return Malformed(what, at, "unknown value type " + std::to_string(raw));
  }
  return static_cast<GgufValueType>(raw);
}

Result<GgufValue> ReadValue(Cursor& c, GgufValueType type, const std::string& key, int depth) {
  std::string what = "value of '" + key + "'";
  switch (type) {
    case GgufValueType::kUint8: {
      LLMSYNC_ASSIGN_OR_RETURN(std::uint8_t v, c.Read<std::uint8_t>(what));
      return GgufValue(type, std::uint64_t{v});
    }
    case GgufValueType::kInt8: {
      LLMSYNC_ASSIGN_OR_RETURN(std::int8_t v, c.Read<std::int8_t>(what));
      return GgufValue(type, std::int64_t{v});
    }
    case GgufValueType::kUint16: {
      LLMSYNC_ASSIGN_OR_RETURN(std::uint16_t v, c.Read<std::uint16_t>(what));
      return GgufValue(type, std::uint64_t{v});
    }
    case GgufValueType::kInt16: {
      LLMSYNC_ASSIGN_OR_RETURN(std::int16_t v, c.Read<std::int16_t>(what));
      return GgufValue(type, std::int64_t{v});
    }
    case GgufValueType::kUint32: {
      LLMSYNC_ASSIGN_OR_RETURN(std::uint32_t v, c.Read<std::uint32_t>(what));
      return GgufValue(type, std::uint64_t{v});
    }
    case GgufValueType::kInt32: {
      LLMSYNC_ASSIGN_OR_RETURN(std::int32_t v, c.Read<std::int32_t>(what));
      return GgufValue(type, std::int64_t{v});
    }
    case GgufValueType::kUint64: {
      LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t v, c.Read<std::uint64_t>(what));
      return GgufValue(type, v);
    }
    case GgufValueType::kInt64: {
      LLMSYNC_ASSIGN_OR_RETURN(std::int64_t v, c.Read<std::int64_t>(what));
      return GgufValue(type, v);
    }
    case GgufValueType::kFloat32: {
      LLMSYNC_ASSIGN_OR_RETURN(float v, c.Read<float>(what));
      return GgufValue(type, double{v});
    }
    case GgufValueType::kFloat64: {
      LLMSYNC_ASSIGN_OR_RETURN(double v, c.Read<double>(what));
      return GgufValue(type, v);
    }
    case GgufValueType::kBool: {
      std::uint64_t at = c.Pos();
      LLMSYNC_ASSIGN_OR_RETURN(std::uint8_t v, c.Read<std::uint8_t>(what));
      if (v > 1) return Malformed(what, at, "bool holds " + std::to_string(v));
      return GgufValue(type, v == 1);
    }
    case GgufValueType::kString: {
      LLMSYNC_ASSIGN_OR_RETURN(std::string_view s, c.ReadString(what, c.Remaining()));
      return GgufValue(type, s);
    }
    case GgufValueType::kArray: {
      std::uint64_t at = c.Pos();
      if (depth >= kMaxArrayDepth) return Malformed(what, at, "arrays nested too deeply");
      LLMSYNC_ASSIGN_OR_RETURN(GgufValueType elem, ReadValueType(c, what + " element type"));
      LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t count, c.Read<std::uint64_t>(what + " length"));
      if (count > c.Remaining() / MinElementBytes(elem)) {
        return Malformed(what, at,
                         "array claims " + std::to_string(count) + " elements but only " +
                             std::to_string(c.Remaining()) + " bytes remain");
      }
      GgufArray array;
      array.elem_type = elem;
      array.items.reserve(count);
      for (std::uint64_t i = 0; i < count; ++i) {
        LLMSYNC_ASSIGN_OR_RETURN(GgufValue item, ReadValue(c, elem, key, depth + 1));
        array.items.push_back(std::move(item));
      }
      return GgufValue(type, std::move(array));
    }
  }
  return Malformed(what, c.Pos(), "unknown value type");
}

std::string TypeMismatch(std::string_view key, const GgufValue& v, std::string_view expected) {
  return "metadata key '" + std::string(key) + "' has type " + std::string(GgufValueTypeName(v.Type())) +
         ", expected " + std::string(expected);
}

bool MulOverflows(std::int64_t a, std::int64_t b, std::int64_t* out) {
  return __builtin_mul_overflow(a, b, out);
}

}  // namespace

std::string_view GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "uint8";
    case GgufValueType::kInt8: return "int8";
    case GgufValueType::kUint16: return "uint16";
    case GgufValueType::kInt16: return "int16";
    case GgufValueType::kUint32: return "uint32";
    case GgufValueType::kInt32: return "int32";
    case GgufValueType::kFloat32: return "float32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "uint64";
    case GgufValueType::kInt64: return "int64";
    case GgufValueType::kFloat64: return "float64";
  }
  return "unknown";
}

bool GgufValue::IsInteger() const {
  return std::holds_alternative<std::uint64_t>(storage_) || std::holds_alternative<std::int64_t>(storage_);
}

double GgufValue::AsDouble() const {
  if (const auto* u = std::get_if<std::uint64_t>(&storage_)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<std::int64_t>(&storage_)) return static_cast<double>(*i);
  return std::get<double>(storage_);
}

std::int64_t GgufValue::AsInt64() const {
  if (const auto* u = std::get_if<std::uint64_t>(&storage_)) {
    return *u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
               ? std::numeric_limits<std::int64_t>::max()
               : static_cast<std::int64_t>(*u);
  }
  return std::get<std::int64_t>(storage_);
}

std::int64_t GgufTensorInfo::NumElements() const {
  std::int64_t n = 1;
  for (std::int64_t d : dims) n *= d;  // validated against overflow at parse time
  return n;
}

std::string GgufTensorInfo::ShapeString() const {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(Env* env, const std::string& path) {
  LLMSYNC_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mapping, env->MapReadOnly(path));
  auto file = std::make_unique<GgufFile>(Token{});
  file->bytes_ = mapping->Bytes();
  file->mapping_ = std::move(mapping);
  Status s = file->ParseAll();
  if (!s.IsOk()) return s.WithContext(path);
  return file;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Parse(std::span<const std::uint8_t> bytes) {
  auto file = std::make_unique<GgufFile>(Token{});
  file->bytes_ = bytes;
  LLMSYNC_RETURN_IF_ERROR(file->ParseAll());
  return file;
}

Status GgufFile::ParseAll() {
  Cursor c(bytes_);
  LLMSYNC_ASSIGN_OR_RETURN(std::uint32_t magic, c.Read<std::uint32_t>("magic"));
  if (magic != kMagic) return Status::InvalidArgument("not a GGUF file (bad magic at offset 0)");
  LLMSYNC_ASSIGN_OR_RETURN(version_, c.Read<std::uint32_t>("version"));
  if (version_ == 1) return Status::InvalidArgument("GGUF version 1 is not supported (only 2 and 3)");
  if (version_ != 2 && version_ != 3) {
    // A byte-swapped version means a big-endian file.
    std::string hint = (version_ & 0xffff) == 0 ? " (big-endian files are not supported)" : "";
    return Status::InvalidArgument("unsupported GGUF version " + std::to_string(version_) + hint);
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t n_tensors, c.Read<std::uint64_t>("tensor count"));
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t n_kv, c.Read<std::uint64_t>("metadata count"));
  // Each key/value needs at least 12 bytes and each tensor info at least 24.
  if (n_kv > c.Remaining() / 12)
    return Malformed("metadata count", 16, std::to_string(n_kv) + " is impossible");
  if (n_tensors > c.Remaining() / 24) {
    return Malformed("tensor count", 8, std::to_string(n_tensors) + " is impossible");
  }

  metadata_.reserve(n_kv);
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::uint64_t at = c.Pos();
    LLMSYNC_ASSIGN_OR_RETURN(std::string_view key, c.ReadString("metadata key", kMaxNameBytes));
    if (metadata_index_.count(key) != 0)
      return Malformed("metadata key", at, "duplicate key '" + std::string(key) + "'");
    LLMSYNC_ASSIGN_OR_RETURN(GgufValueType type, ReadValueType(c, "type of '" + std::string(key) + "'"));
    LLMSYNC_ASSIGN_OR_RETURN(GgufValue value, ReadValue(c, type, std::string(key), 0));
    metadata_index_.emplace(key, metadata_.size());
    metadata_.push_back(GgufKeyValue{key, std::move(value)});
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->IsInteger() || a->AsInt64() <= 0 || (a->AsInt64() & (a->AsInt64() - 1)) != 0) {
      return Status::DataLoss("gguf: general.alignment must be a positive power of two");
    }
    alignment_ = static_cast<std::uint64_t>(a->AsInt64());
  }

  tensors_.reserve(n_tensors);
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    std::uint64_t at = c.Pos();
    GgufTensorInfo t;
    LLMSYNC_ASSIGN_OR_RETURN(t.name, c.ReadString("tensor name", kMaxNameBytes));
    std::string what = "tensor '" + std::string(t.name) + "'";
    if (tensor_index_.count(t.name) != 0) return Malformed(what, at, "duplicate tensor name");
    LLMSYNC_ASSIGN_OR_RETURN(std::uint32_t n_dims, c.Read<std::uint32_t>(what + " dimension count"));
    if (n_dims == 0 || n_dims > kMaxDims) return Malformed(what, at, std::to_string(n_dims) + " dimensions");
    std::int64_t elems = 1;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t dim, c.Read<std::uint64_t>(what + " dimension"));
      if (dim == 0 || dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          MulOverflows(elems, static_cast<std::int64_t>(dim), &elems)) {
        return Malformed(what, at, "invalid dimension " + std::to_string(dim));
      }
      t.dims.push_back(static_cast<std::int64_t>(dim));
    }
    std::uint64_t type_at = c.Pos();
    LLMSYNC_ASSIGN_OR_RETURN(std::uint32_t raw_type, c.Read<std::uint32_t>(what + " type"));
    std::optional<GgmlTypeInfo> info = LookupGgmlType(raw_type);
    if (!info) return Malformed(what, type_at, "unknown tensor type " + std::to_string(raw_type));
    t.type = info->type;
    if (t.dims[0] % info->block_elems != 0) {
      return Malformed(what, at,
                       "row length " + std::to_string(t.dims[0]) + " is not a multiple of the " +
                           std::string(info->name) + " block size");
    }
    std::uint64_t blocks = static_cast<std::uint64_t>(elems) / info->block_elems;
    if (__builtin_mul_overflow(blocks, std::uint64_t{info->block_bytes}, &t.n_bytes)) {
      return Malformed(what, at, "tensor size overflows");
    }
    LLMSYNC_ASSIGN_OR_RETURN(t.offset, c.Read<std::uint64_t>(what + " offset"));
    if (t.offset % alignment_ != 0) {
      return Malformed(
          what, at,
          "data offset " + std::to_string(t.offset) + " is not aligned to " + std::to_string(alignment_));
    }
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  std::uint64_t pos = c.Pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (data_offset_ > bytes_.size() && !tensors_.empty()) {
    return Malformed("tensor data", pos, "file ends before the data section");
  }
  for (GgufTensorInfo& t : tensors_) {
    std::uint64_t begin = 0;
    std::uint64_t end = 0;
    if (__builtin_add_overflow(data_offset_, t.offset, &begin) ||
        __builtin_add_overflow(begin, t.n_bytes, &end) || end > bytes_.size()) {
      return Status::DataLoss("gguf: data of tensor '" + std::string(t.name) + "' (" +
                              std::to_string(t.n_bytes) + " bytes at data offset " +
                              std::to_string(t.offset) + ") runs past the end of the " +
                              std::to_string(bytes_.size()) + "-byte file");
    }
    t.data = bytes_.subspan(begin, t.n_bytes);
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].value;
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

Result<const GgufValue*> Require(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.Find(key);
  if (v == nullptr) return Status::NotFound("metadata key '" + std::string(key) + "' not found");
  return v;
}

}  // namespace

Result<std::string_view> GgufFile::GetString(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->Type() != GgufValueType::kString) return Status::InvalidArgument(TypeMismatch(key, *v, "string"));
  return v->AsString();
}

Result<std::uint64_t> GgufFile::GetUint(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (const auto* u = std::get_if<std::uint64_t>(&v->Raw())) return *u;
  if (const auto* i = std::get_if<std::int64_t>(&v->Raw()); i != nullptr && *i >= 0) {
    return static_cast<std::uint64_t>(*i);
  }
  return Status::InvalidArgument(TypeMismatch(key, *v, "non-negative integer"));
}

Result<std::int64_t> GgufFile::GetInt(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (const auto* i = std::get_if<std::int64_t>(&v->Raw())) return *i;
  if (const auto* u = std::get_if<std::uint64_t>(&v->Raw());
      u != nullptr && *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return static_cast<std::int64_t>(*u);
  }
  return Status::InvalidArgument(TypeMismatch(key, *v, "integer"));
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (!v->IsFloat() && !v->IsInteger()) return Status::InvalidArgument(TypeMismatch(key, *v, "number"));
  return v->AsDouble();
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->Type() != GgufValueType::kBool) return Status::InvalidArgument(TypeMismatch(key, *v, "bool"));
  return v->AsBool();
}

Result<const GgufArray*> GgufFile::GetArray(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufValue* v, Require(*this, key));
  if (v->Type() != GgufValueType::kArray) return Status::InvalidArgument(TypeMismatch(key, *v, "array"));
  return &v->AsArray();
}

Result<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (a->elem_type != GgufValueType::kString) {
    return Status::InvalidArgument("metadata key '" + std::string(key) + "' is an array of " +
                                   std::string(GgufValueTypeName(a->elem_type)) + ", expected strings");
  }
  std::vector<std::string_view> out;
  out.reserve(a->items.size());
  for (const GgufValue& v : a->items) out.push_back(v.AsString());
  return out;
}

Result<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  std::vector<float> out;
  out.reserve(a->items.size());
  for (const GgufValue& v : a->items) {
    if (!v.IsFloat() && !v.IsInteger()) {
      return Status::InvalidArgument("metadata key '" + std::string(key) + "' is an array of " +
                                     std::string(GgufValueTypeName(a->elem_type)) + ", expected numbers");
    }
    out.push_back(static_cast<float>(v.AsDouble()));
  }
  return out;
}

Result<std::vector<std::int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  LLMSYNC_ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  std::vector<std::int64_t> out;
  out.reserve(a->items.size());
  for (const GgufValue& v : a->items) {
    if (!v.IsInteger()) {
      return Status::InvalidArgument("metadata key '" + std::string(key) + "' is an array of " +
                                     std::string(GgufValueTypeName(a->elem_type)) + ", expected integers");
    }
    out.push_back(v.AsInt64());
  }
  return out;
}

}  // namespace llmsync::engine
