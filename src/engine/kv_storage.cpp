#include "engine/kv_storage.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace llmsync::engine {

std::string_view KvDtypeName(KvDtype dtype) { return dtype == KvDtype::kF16 ? "f16" : "f32"; }

std::size_t KvDtypeBytes(KvDtype dtype) { return dtype == KvDtype::kF16 ? 2 : 4; }

std::string KvGeometry::ToString() const {
  return std::to_string(n_layer) + " layers x " + std::to_string(n_head_kv) + " kv heads x " +
         std::to_string(head_dim) + " dims, " + std::string(KvDtypeName(dtype));
}

ContiguousKvStorage::ContiguousKvStorage(const KvGeometry& geometry, std::int64_t capacity)
    : geometry_(geometry), capacity_(std::max<std::int64_t>(capacity, 0)) {}

Status ContiguousKvStorage::AddSequence(SeqId seq) {
  if (seqs_.count(seq) != 0) {
    return Status::AlreadyExists("kv: sequence " + std::to_string(seq) + " already exists");
  }
  std::uint64_t bytes = static_cast<std::uint64_t>(capacity_) * 2 *
                        static_cast<std::uint64_t>(geometry_.n_layer) * geometry_.RowBytes();
  Sequence s;
  try {
    s.bytes.resize(bytes);
  } catch (const std::bad_alloc&) {
    return Status::ResourceExhausted("kv: cannot allocate " + std::to_string(bytes) + " bytes for sequence " +
                                     std::to_string(seq));
  }
  seqs_.emplace(seq, std::move(s));
  return Status::Ok();
}

Status ContiguousKvStorage::RemoveSequence(SeqId seq) {
  if (seqs_.erase(seq) == 0) return Status::NotFound("kv: no sequence " + std::to_string(seq));
  return Status::Ok();
}

Status ContiguousKvStorage::CopySequence(SeqId src, SeqId dst, std::int64_t n_positions) {
  auto it = seqs_.find(src);
  if (it == seqs_.end()) return Status::NotFound("kv: no sequence " + std::to_string(src));
  if (n_positions < 0 || n_positions > it->second.length) {
    return Status::InvalidArgument("kv: cannot copy " + std::to_string(n_positions) +
                                   " positions of sequence " + std::to_string(src) + ", which holds " +
                                   std::to_string(it->second.length));
  }
  if (src == dst) {
    it->second.length = n_positions;
    return Status::Ok();
  }
  if (seqs_.count(dst) == 0) LLMSYNC_RETURN_IF_ERROR(AddSequence(dst));
  Sequence& from = seqs_.at(src);
  Sequence& to = seqs_.at(dst);
  std::size_t plane_bytes = static_cast<std::size_t>(capacity_) * geometry_.RowBytes();
  std::size_t copy_bytes = static_cast<std::size_t>(n_positions) * geometry_.RowBytes();
  for (std::int64_t plane = 0; plane < 2 * geometry_.n_layer; ++plane) {
    std::size_t at = static_cast<std::size_t>(plane) * plane_bytes;
    if (copy_bytes > 0) std::memcpy(to.bytes.data() + at, from.bytes.data() + at, copy_bytes);
  }
  to.length = n_positions;
  return Status::Ok();
}

Result<std::int64_t> ContiguousKvStorage::Length(SeqId seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return Status::NotFound("kv: no sequence " + std::to_string(seq));
  return it->second.length;
}

Status ContiguousKvStorage::PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return Status::NotFound("kv: no sequence " + std::to_string(seq));
  if (begin < 0 || count < 0) return Status::InvalidArgument("kv: negative position or count");
  if (begin > it->second.length) {
    return Status::InvalidArgument("kv: sequence " + std::to_string(seq) + " holds " +
                                   std::to_string(it->second.length) + " positions; cannot write at " +
                                   std::to_string(begin) + " (positions must follow without gaps)");
  }
  if (count > capacity_ - begin) {
    return Status::ResourceExhausted("kv: sequence " + std::to_string(seq) + " would need " +
                                     std::to_string(begin + count) + " positions; capacity is " +
                                     std::to_string(capacity_));
  }
  it->second.length = begin + count;
  return Status::Ok();
}

KvRun ContiguousKvStorage::RunAt(SeqId seq, std::int64_t plane, std::int64_t pos) {
  Sequence& s = seqs_.find(seq)->second;
  std::size_t row_bytes = geometry_.RowBytes();
  std::size_t offset = (static_cast<std::size_t>(plane) * static_cast<std::size_t>(capacity_) +
                        static_cast<std::size_t>(pos)) *
                       row_bytes;
  return KvRun{s.bytes.data() + offset, s.length - pos, static_cast<std::int64_t>(row_bytes)};
}

KvRun ContiguousKvStorage::Keys(SeqId seq, std::int64_t layer, std::int64_t pos) {
  return RunAt(seq, layer, pos);
}

KvRun ContiguousKvStorage::Values(SeqId seq, std::int64_t layer, std::int64_t pos) {
  return RunAt(seq, geometry_.n_layer + layer, pos);
}

}  // namespace llmsync::engine
