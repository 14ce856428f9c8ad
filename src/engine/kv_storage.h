// KvStorage: where the engine reads and writes attention keys and values. The engine does not own
// KV memory; whoever owns it (the paged KV manager, or ContiguousKvStorage below) implements this
// interface.
//
// Model of the data: for each sequence, layer and position there is one key row and one value row
// of KvGeometry::RowElems() elements (n_head_kv heads × head_dim, head-major), stored as F16 (the
// default) or F32. Rows of consecutive positions may be grouped in runs: Keys()/Values() return
// the run holding a position, so a paged store with blocks of 16–32 positions answers with the
// rest of the block and a flat store with the rest of the sequence.
//
// Protocol for one Engine::Forward call:
//   1. the engine calls PrepareWrite(seq, begin, count) once per sequence in the batch, from the
//      calling thread. It makes positions [begin, begin + count) writable (allocating or
//      copying-on-write blocks as needed) and declares that the sequence now ends at begin + count:
//      anything the store held at or after `begin` is superseded. Positions [0, begin) must already
//      hold rows written by earlier forwards;
//   2. the engine writes the key and value rows of every batch entry and reads the rows of
//      positions [0, pos] of the entry's sequence, from several threads at once. Keys()/Values()
//      therefore must be safe to call concurrently and must not change the store's structure.
// If a PrepareWrite fails, Forward returns its error without computing anything; the sequences
// prepared before it may then end in rows with unspecified contents, which the next successful
// PrepareWrite at or before them supersedes.
//
// Thread safety: see the protocol. Implementations document the rest of their own API.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmsync/status.h"

namespace llmsync::engine {

using SeqId = std::uint64_t;

enum class KvDtype { kF16, kF32 };

std::string_view KvDtypeName(KvDtype dtype);
std::size_t KvDtypeBytes(KvDtype dtype);

struct KvGeometry {
  std::int64_t n_layer = 0;
  std::int64_t n_head_kv = 0;
  std::int64_t head_dim = 0;
  KvDtype dtype = KvDtype::kF16;

  std::int64_t RowElems() const { return n_head_kv * head_dim; }
  std::size_t RowBytes() const { return static_cast<std::size_t>(RowElems()) * KvDtypeBytes(dtype); }
  friend bool operator==(const KvGeometry&, const KvGeometry&) = default;
  std::string ToString() const;  // "2 layers x 4 kv heads x 64 dims, f16"
};

// A run of rows of consecutive positions: the row of position `pos + i` (for i < count) starts at
// data + i * stride_bytes. Row elements are contiguous.
struct KvRun {
  std::uint8_t* data = nullptr;
  std::int64_t count = 0;
  std::int64_t stride_bytes = 0;
};

class KvStorage {
 public:
  virtual ~KvStorage() = default;

  virtual KvGeometry Geometry() const = 0;

  // See the protocol above. kInvalidArgument / kNotFound / kResourceExhausted with a message.
  virtual Status PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) = 0;

  // The run holding position `pos` of `seq` in `layer`.
  // REQUIRES: pos lies in [0, end of the sequence after its last PrepareWrite).
  virtual KvRun Keys(SeqId seq, std::int64_t layer, std::int64_t pos) = 0;
  virtual KvRun Values(SeqId seq, std::int64_t layer, std::int64_t pos) = 0;
};

// One flat buffer per sequence, sized for `capacity` positions when the sequence is added.
// Layout per sequence: K of layer 0 (capacity rows), K of layer 1, ..., then V likewise.
//
// Thread safety: AddSequence/RemoveSequence/CopySequence/Length must not run concurrently with
// anything else; Keys/Values may run concurrently with each other (the engine protocol).
class ContiguousKvStorage final : public KvStorage {
 public:
  ContiguousKvStorage(const KvGeometry& geometry, std::int64_t capacity);

  KvGeometry Geometry() const override { return geometry_; }
  std::int64_t Capacity() const { return capacity_; }

  // kAlreadyExists when present; kResourceExhausted when the buffer cannot be allocated.
  Status AddSequence(SeqId seq);
  Status RemoveSequence(SeqId seq);  // kNotFound when absent
  // Makes `dst` (added if needed) hold the first `n_positions` rows of `src`: a fork of a prefix.
  Status CopySequence(SeqId src, SeqId dst, std::int64_t n_positions);
  // Positions written so far (the end declared by the last PrepareWrite); kNotFound when absent.
  Result<std::int64_t> Length(SeqId seq) const;

  Status PrepareWrite(SeqId seq, std::int64_t begin, std::int64_t count) override;
  KvRun Keys(SeqId seq, std::int64_t layer, std::int64_t pos) override;
  KvRun Values(SeqId seq, std::int64_t layer, std::int64_t pos) override;

 private:
  struct Sequence {
    std::vector<std::uint8_t> bytes;
    std::int64_t length = 0;
  };
  KvRun RunAt(SeqId seq, std::int64_t plane, std::int64_t pos);

  KvGeometry geometry_;
  std::int64_t capacity_;
  std::unordered_map<SeqId, Sequence> seqs_;
};

}  // namespace llmsync::engine
