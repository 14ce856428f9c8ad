// ModelFingerprint: an Id naming exactly what a model computes, so that derived state (KV cache
// snapshots, frozen token ids) is only ever reused with the model that produced it.
//
// The fingerprint is SHA-256 over a canonical encoding of
//   - every metadata key/value of the GGUF file in key order (architecture, hyperparameters,
//     rope settings, the tokenizer's tokens/merges/scores/token types and special ids), except
//     cosmetic keys that do not change what a token id means or what the forward pass computes:
//     `general.*` other than `general.architecture`, and `tokenizer.chat_template*`;
//   - every tensor, in name order: name, type, shape, byte size and a digest of ALL its bytes.
// Tensor data is hashed in full, not sampled: a sampled checksum can miss a one-row fine-tune, and a
// missed difference would make llmsync reuse KV state silently computed by another model. The
// cost (about 0.5 s per GB with SHA-NI, split over `n_threads`; measured in docs/PERFORMANCE.md)
// is paid once when a model is opened. Large tensors are hashed as a list of 16 MiB chunk digests
// so the work parallelizes; the result does not depend on the thread count.
//
// Thread safety: pure functions over an immutable GgufFile.
#pragma once

#include "engine/gguf/gguf_reader.h"
#include "engine/model.h"
#include "llmsync/id.h"

namespace llmsync::engine {

// The fingerprint of `file`. REQUIRES: n_threads >= 1 (values below are treated as 1).
// With release_pages, each chunk's pages are dropped from the process (MADV_DONTNEED) once hashed,
// so a process that never computes with the weights (the api role) keeps its resident memory at a
// few chunks rather than the model's size. The result is the same.
// REQUIRES for release_pages: `file` maps a file (GgufFile::Open, a read-only private mapping, which
// refaults dropped pages from the file); over caller-owned bytes (GgufFile::Parse) it would discard them.
Id ModelFingerprint(const GgufFile& file, int n_threads = 2, bool release_pages = false);

inline Id ModelFingerprint(const Model& model, int n_threads = 2) {
  return ModelFingerprint(model.File(), n_threads);
}

}  // namespace llmsync::engine
