#include "engine/gguf/gguf_writer.h"

#include <cstring>

namespace llmsync::engine {
namespace {

template <typename T>
void Append(std::string& out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out.append(buf, sizeof(T));
}

void AppendString(std::string& out, std::string_view s) {
  Append<std::uint64_t>(out, s.size());
  out.append(s);
}

void AppendType(std::string& out, GgufValueType t) {
  Append<std::uint32_t>(out, static_cast<std::uint32_t>(t));
}

// Encodes the payload of a value (without its type tag).
void AppendPayload(std::string& out, const GgufValue& v) {
  switch (v.Type()) {
    case GgufValueType::kUint8: Append<std::uint8_t>(out, static_cast<std::uint8_t>(v.AsInt64())); break;
    case GgufValueType::kInt8: Append<std::int8_t>(out, static_cast<std::int8_t>(v.AsInt64())); break;
    case GgufValueType::kUint16: Append<std::uint16_t>(out, static_cast<std::uint16_t>(v.AsInt64())); break;
    case GgufValueType::kInt16: Append<std::int16_t>(out, static_cast<std::int16_t>(v.AsInt64())); break;
    case GgufValueType::kUint32: Append<std::uint32_t>(out, static_cast<std::uint32_t>(v.AsInt64())); break;
    case GgufValueType::kInt32: Append<std::int32_t>(out, static_cast<std::int32_t>(v.AsInt64())); break;
    case GgufValueType::kUint64: Append<std::uint64_t>(out, std::get<std::uint64_t>(v.Raw())); break;
    case GgufValueType::kInt64: Append<std::int64_t>(out, v.AsInt64()); break;
    case GgufValueType::kFloat32: Append<float>(out, static_cast<float>(v.AsDouble())); break;
    case GgufValueType::kFloat64: Append<double>(out, v.AsDouble()); break;
    case GgufValueType::kBool: Append<std::uint8_t>(out, v.AsBool() ? 1 : 0); break;
    case GgufValueType::kString: AppendString(out, v.AsString()); break;
    case GgufValueType::kArray: {
      const GgufArray& a = v.AsArray();
      AppendType(out, a.elem_type);
      Append<std::uint64_t>(out, a.items.size());
      for (const GgufValue& item : a.items) AppendPayload(out, item);
      break;
    }
  }
}

}  // namespace

void GgufWriter::Put(std::string_view key, std::string encoded) {
  auto it = kv_index_.find(std::string(key));
  if (it != kv_index_.end()) {
    kvs_[it->second].second = std::move(encoded);
    return;
  }
  kv_index_.emplace(std::string(key), kvs_.size());
  kvs_.emplace_back(std::string(key), std::move(encoded));
}

void GgufWriter::SetString(std::string_view key, std::string_view value) {
  std::string e;
  AppendType(e, GgufValueType::kString);
  AppendString(e, value);
  Put(key, std::move(e));
}

void GgufWriter::SetUint32(std::string_view key, std::uint32_t value) {
  std::string e;
  AppendType(e, GgufValueType::kUint32);
  Append(e, value);
  Put(key, std::move(e));
}

void GgufWriter::SetInt32(std::string_view key, std::int32_t value) {
  std::string e;
  AppendType(e, GgufValueType::kInt32);
  Append(e, value);
  Put(key, std::move(e));
}

void GgufWriter::SetUint64(std::string_view key, std::uint64_t value) {
  std::string e;
  AppendType(e, GgufValueType::kUint64);
  Append(e, value);
  Put(key, std::move(e));
}

void GgufWriter::SetFloat32(std::string_view key, float value) {
  std::string e;
  AppendType(e, GgufValueType::kFloat32);
  Append(e, value);
  Put(key, std::move(e));
}

void GgufWriter::SetBool(std::string_view key, bool value) {
  std::string e;
  AppendType(e, GgufValueType::kBool);
  Append<std::uint8_t>(e, value ? 1 : 0);
  Put(key, std::move(e));
}

void GgufWriter::SetStringArray(std::string_view key, const std::vector<std::string>& values) {
  std::string e;
  AppendType(e, GgufValueType::kArray);
  AppendType(e, GgufValueType::kString);
  Append<std::uint64_t>(e, values.size());
  for (const std::string& v : values) AppendString(e, v);
  Put(key, std::move(e));
}

void GgufWriter::SetFloat32Array(std::string_view key, const std::vector<float>& values) {
  std::string e;
  AppendType(e, GgufValueType::kArray);
  AppendType(e, GgufValueType::kFloat32);
  Append<std::uint64_t>(e, values.size());
  for (float v : values) Append(e, v);
  Put(key, std::move(e));
}

void GgufWriter::SetInt32Array(std::string_view key, const std::vector<std::int32_t>& values) {
  std::string e;
  AppendType(e, GgufValueType::kArray);
  AppendType(e, GgufValueType::kInt32);
  Append<std::uint64_t>(e, values.size());
  for (std::int32_t v : values) Append(e, v);
  Put(key, std::move(e));
}

void GgufWriter::CopyValue(std::string_view key, const GgufValue& value) {
  std::string e;
  AppendType(e, value.Type());
  AppendPayload(e, value);
  Put(key, std::move(e));
}

Status GgufWriter::AddTensor(std::string_view name, GgmlType type, const std::vector<std::int64_t>& dims,
                             std::vector<std::uint8_t> data) {
  if (dims.empty() || dims.size() > 4) return Status::InvalidArgument("tensor needs 1 to 4 dimensions");
  std::uint64_t elems = 1;
  for (std::int64_t d : dims) {
    if (d <= 0)
      return Status::InvalidArgument("tensor '" + std::string(name) + "' has a non-positive dimension");
    elems *= static_cast<std::uint64_t>(d);
  }
  LLMSYNC_ASSIGN_OR_RETURN(std::uint64_t row_bytes, RowBytes(type, static_cast<std::uint64_t>(dims[0])));
  std::uint64_t expected = row_bytes * (elems / static_cast<std::uint64_t>(dims[0]));
  if (data.size() != expected) {
    return Status::InvalidArgument("tensor '" + std::string(name) + "' has " + std::to_string(data.size()) +
                                   " bytes, expected " + std::to_string(expected));
  }
  tensors_.push_back(Tensor{std::string(name), type, dims, std::move(data)});
  return Status::Ok();
}

namespace {

std::uint64_t Padded(std::uint64_t n) {
  return (n + GgufWriter::kAlignment - 1) / GgufWriter::kAlignment * GgufWriter::kAlignment;
}

}  // namespace

std::string GgufWriter::SerializeHeader() const {
  std::string out;
  Append<std::uint32_t>(out, 0x46554747);  // "GGUF"
  Append<std::uint32_t>(out, 3);
  Append<std::uint64_t>(out, tensors_.size());
  Append<std::uint64_t>(out, kvs_.size());
  for (const auto& [key, encoded] : kvs_) {
    AppendString(out, key);
    out += encoded;
  }
  std::uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    AppendString(out, t.name);
    Append<std::uint32_t>(out, static_cast<std::uint32_t>(t.dims.size()));
    for (std::int64_t d : t.dims) Append<std::uint64_t>(out, static_cast<std::uint64_t>(d));
    Append<std::uint32_t>(out, static_cast<std::uint32_t>(t.type));
    Append<std::uint64_t>(out, offset);
    offset = Padded(offset + t.data.size());
  }
  out.resize(Padded(out.size()), '\0');
  return out;
}

std::string GgufWriter::Serialize() const {
  std::string out = SerializeHeader();
  for (const Tensor& t : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
    out.resize(Padded(out.size()), '\0');
  }
  return out;
}

Status GgufWriter::WriteTo(Env* env, const std::string& path) const {
  Status s = WriteFileAtomically(env, path, [this](WritableFile& file) {
    LLMSYNC_RETURN_IF_ERROR(file.Append(SerializeHeader()));
    for (const Tensor& t : tensors_) {
      LLMSYNC_RETURN_IF_ERROR(
          file.Append(std::string_view(reinterpret_cast<const char*>(t.data.data()), t.data.size())));
      std::size_t pad = Padded(t.data.size()) - t.data.size();
      if (pad > 0) LLMSYNC_RETURN_IF_ERROR(file.Append(std::string(pad, '\0')));
    }
    return Status::Ok();
  });
  return s.WithContext("writing " + path);
}

}  // namespace llmsync::engine
