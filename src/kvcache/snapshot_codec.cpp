#include "kvcache/snapshot_codec.h"

#include <cstring>
#include <string_view>

#include "base/sha256.h"

namespace llmsync::kvcache {
namespace {

constexpr std::string_view kMagic = "LLMSKVS1";
constexpr std::size_t kChecksumBytes = 32;
constexpr std::uint32_t kMaxTokens = 1 << 16;
constexpr std::uint32_t kMaxDim = 1 << 20;

void PutU32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutId(std::string& out, const Id& id) {
  out.append(reinterpret_cast<const char*>(id.RawBytes().data()), Id::kBytes);
}

// Reads fixed-width fields; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
  bool Has(std::size_t n) const { return bytes_.size() - at_ >= n; }
  std::size_t Offset() const { return at_; }
  std::uint32_t U32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<std::uint32_t>(bytes_[at_ + i]) << (8 * i);
    at_ += 4;
    return v;
  }
  std::uint64_t U64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(bytes_[at_ + i]) << (8 * i);
    at_ += 8;
    return v;
  }
  Id ReadId() {
    Id::Bytes b{};
    std::memcpy(b.data(), bytes_.data() + at_, Id::kBytes);
    at_ += Id::kBytes;
    return Id(b);
  }

 private:
  std::span<const std::uint8_t> bytes_;
  std::size_t at_ = 0;
};

Status Corrupt(const std::string& what) { return Status::DataLoss("kv snapshot: " + what); }

std::string Mismatch(const std::string& field, const std::string& got, const std::string& want) {
  return "kv snapshot: " + field + " is " + got + ", expected " + want;
}

}  // namespace

std::size_t SnapshotBytes(const BlockLayout& layout, std::int64_t n) {
  return kSnapshotFixedHeaderBytes + 4 * static_cast<std::size_t>(n) + 8 +
         static_cast<std::size_t>(layout.Planes() * n) * layout.RowBytes() + kChecksumBytes;
}

std::string EncodeSnapshot(const SnapshotHeader& header, const BlockLayout& layout,
                           const std::uint8_t* block) {
  const std::int64_t n = static_cast<std::int64_t>(header.tokens.size());
  std::string out;
  out.reserve(SnapshotBytes(layout, n));
  out.append(kMagic);
  PutU32(out, kSnapshotVersion);
  PutU32(out, header.geometry.dtype == engine::KvDtype::kF16 ? 0 : 1);
  PutU32(out, static_cast<std::uint32_t>(header.geometry.n_layer));
  PutU32(out, static_cast<std::uint32_t>(header.geometry.n_head_kv));
  PutU32(out, static_cast<std::uint32_t>(header.geometry.head_dim));
  PutU32(out, static_cast<std::uint32_t>(header.block_tokens));
  PutU32(out, static_cast<std::uint32_t>(n));
  PutU64(out, static_cast<std::uint64_t>(header.start));
  PutU64(out, header.written_unix_ms);
  PutId(out, header.model);
  PutId(out, header.key);
  PutId(out, header.parent);
  for (std::int32_t t : header.tokens) PutU32(out, static_cast<std::uint32_t>(t));
  const std::size_t plane_bytes = static_cast<std::size_t>(n) * layout.RowBytes();
  PutU64(out, static_cast<std::uint64_t>(layout.Planes()) * plane_bytes);
  for (std::int64_t plane = 0; plane < layout.Planes(); ++plane) {
    out.append(reinterpret_cast<const char*>(block + layout.RowOffset(plane, 0)), plane_bytes);
  }
  Sha256Digest sum = Sha256::Hash(std::string_view(out));
  out.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return out;
}

Result<SnapshotHeader> DecodeSnapshotHeader(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  if (!r.Has(kSnapshotFixedHeaderBytes)) {
    return Corrupt("file of " + std::to_string(bytes.size()) + " bytes is shorter than the header");
  }
  if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) return Corrupt("bad magic");
  Reader h(bytes.subspan(kMagic.size()));
  std::uint32_t version = h.U32();
  if (version != kSnapshotVersion) {
    return Corrupt("format version " + std::to_string(version) + " is not " +
                   std::to_string(kSnapshotVersion));
  }
  SnapshotHeader out;
  std::uint32_t dtype = h.U32();
  if (dtype > 1) return Corrupt("unknown dtype " + std::to_string(dtype));
  out.geometry.dtype = dtype == 0 ? engine::KvDtype::kF16 : engine::KvDtype::kF32;
  std::uint32_t n_layer = h.U32();
  std::uint32_t n_head_kv = h.U32();
  std::uint32_t head_dim = h.U32();
  std::uint32_t block_tokens = h.U32();
  std::uint32_t n = h.U32();
  if (n_layer == 0 || n_layer > kMaxDim || n_head_kv == 0 || n_head_kv > kMaxDim || head_dim == 0 ||
      head_dim > kMaxDim || block_tokens == 0 || block_tokens > kMaxTokens || n == 0 || n > block_tokens) {
    return Corrupt("implausible geometry or token count");
  }
  out.geometry.n_layer = n_layer;
  out.geometry.n_head_kv = n_head_kv;
  out.geometry.head_dim = head_dim;
  out.block_tokens = block_tokens;
  std::uint64_t start = h.U64();
  if (start > (std::uint64_t{1} << 40)) return Corrupt("implausible start position");
  out.start = static_cast<std::int64_t>(start);
  out.written_unix_ms = h.U64();
  out.model = h.ReadId();
  out.key = h.ReadId();
  out.parent = h.ReadId();
  Reader t(bytes.subspan(kSnapshotFixedHeaderBytes));
  if (!t.Has(4 * static_cast<std::size_t>(n))) return Corrupt("truncated in the token list");
  out.tokens.resize(n);
  for (std::uint32_t i = 0; i < n; ++i) out.tokens[i] = static_cast<std::int32_t>(t.U32());
  return out;
}

Status DecodeSnapshot(std::span<const std::uint8_t> bytes, const SnapshotHeader& expected,
                      const BlockLayout& layout, std::uint8_t* block) {
  LLMSYNC_ASSIGN_OR_RETURN(SnapshotHeader got, DecodeSnapshotHeader(bytes));
  const std::int64_t n = static_cast<std::int64_t>(got.tokens.size());
  if (!(got.geometry == layout.geometry) || got.block_tokens != layout.block_tokens) {
    return Status::InvalidArgument(Mismatch(
        "layout", got.geometry.ToString() + ", " + std::to_string(got.block_tokens) + "-token blocks",
        layout.geometry.ToString() + ", " + std::to_string(layout.block_tokens) + "-token blocks"));
  }
  if (bytes.size() != SnapshotBytes(layout, n)) {
    return Corrupt("file is " + std::to_string(bytes.size()) + " bytes; its header implies " +
                   std::to_string(SnapshotBytes(layout, n)) + " (truncated or padded)");
  }
  if (got.model != expected.model) {
    return Status::InvalidArgument(
        Mismatch("model fingerprint", got.model.ShortHex(), expected.model.ShortHex()));
  }
  if (got.key != expected.key) {
    return Status::InvalidArgument(Mismatch("span key", got.key.ShortHex(), expected.key.ShortHex()));
  }
  if (got.parent != expected.parent || got.start != expected.start || got.tokens != expected.tokens) {
    return Status::InvalidArgument("kv snapshot: parent, position or tokens differ from the requested span");
  }
  if (ChildKey(got.parent, got.tokens) != got.key) {
    return Corrupt("span key does not match its parent and tokens");
  }
  const std::size_t body = bytes.size() - kChecksumBytes;
  Sha256Digest sum = Sha256::Hash(bytes.first(body));
  if (std::memcmp(sum.data(), bytes.data() + body, kChecksumBytes) != 0) return Corrupt("checksum mismatch");
  Reader p(bytes.subspan(kSnapshotFixedHeaderBytes + 4 * static_cast<std::size_t>(n)));
  const std::size_t plane_bytes = static_cast<std::size_t>(n) * layout.RowBytes();
  if (p.U64() != static_cast<std::uint64_t>(layout.Planes()) * plane_bytes) {
    return Corrupt("payload size field disagrees with the header");
  }
  const std::uint8_t* payload =
      bytes.data() + kSnapshotFixedHeaderBytes + 4 * static_cast<std::size_t>(n) + 8;
  for (std::int64_t plane = 0; plane < layout.Planes(); ++plane) {
    std::memcpy(block + layout.RowOffset(plane, 0), payload + static_cast<std::size_t>(plane) * plane_bytes,
                plane_bytes);
  }
  return Status::Ok();
}

}  // namespace llmsync::kvcache
