#include "engine/model_fingerprint.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <string_view>
#include <vector>

#include "base/sha256.h"
#include "engine/thread_pool.h"

namespace llmsync::engine {
namespace {

constexpr std::string_view kFingerprintTag = "llmsync.model-fingerprint.v1";
constexpr std::uint64_t kChunkBytes = std::uint64_t{16} << 20;

// Keys that name, describe or template a model without changing its computation.
bool IsCosmeticKey(std::string_view key) {
  if (key.starts_with("general.")) return key != "general.architecture";
  return key.starts_with("tokenizer.chat_template");
}

void HashValue(Sha256& h, const GgufValue& value) {
  h.UpdateU32(static_cast<std::uint32_t>(value.Type()));
  const GgufValue::Storage& raw = value.Raw();
  if (const auto* u = std::get_if<std::uint64_t>(&raw)) {
    h.UpdateU64(*u);
  } else if (const auto* i = std::get_if<std::int64_t>(&raw)) {
    h.UpdateU64(static_cast<std::uint64_t>(*i));
  } else if (const auto* d = std::get_if<double>(&raw)) {
    h.UpdateU64(std::bit_cast<std::uint64_t>(*d));
  } else if (const auto* b = std::get_if<bool>(&raw)) {
    h.UpdateU32(*b ? 1 : 0);
  } else if (const auto* s = std::get_if<std::string_view>(&raw)) {
    h.UpdateU64(s->size());
    h.Update(*s);
  } else {
    const GgufArray& array = std::get<GgufArray>(raw);
    h.UpdateU32(static_cast<std::uint32_t>(array.elem_type));
    h.UpdateU64(array.items.size());
    for (const GgufValue& item : array.items) HashValue(h, item);
  }
}

struct ChunkJob {
  std::size_t tensor = 0;
  std::span<const std::uint8_t> bytes;
};

// Drops the whole pages inside `bytes` (a read-only file mapping) from the process; a later read
// faults them in again from the page cache. Advice only: a failure changes nothing but memory use.
void ReleasePages(std::span<const std::uint8_t> bytes) {
  static const std::uintptr_t kPage = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  std::uintptr_t begin = (reinterpret_cast<std::uintptr_t>(bytes.data()) + kPage - 1) / kPage * kPage;
  std::uintptr_t end = (reinterpret_cast<std::uintptr_t>(bytes.data()) + bytes.size()) / kPage * kPage;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

}  // namespace

Id ModelFingerprint(const GgufFile& file, int n_threads, bool release_pages) {
  Sha256 h;
  h.Update(kFingerprintTag);

  std::vector<const GgufKeyValue*> metadata;
  for (const GgufKeyValue& kv : file.Metadata()) {
    if (!IsCosmeticKey(kv.key)) metadata.push_back(&kv);
  }
  std::sort(metadata.begin(), metadata.end(),
            [](const GgufKeyValue* a, const GgufKeyValue* b) { return a->key < b->key; });
  h.UpdateU64(metadata.size());
  for (const GgufKeyValue* kv : metadata) {
    h.UpdateU64(kv->key.size());
    h.Update(kv->key);
    HashValue(h, kv->value);
  }

  std::vector<const GgufTensorInfo*> tensors;
  for (const GgufTensorInfo& t : file.Tensors()) tensors.push_back(&t);
  std::sort(tensors.begin(), tensors.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->name < b->name; });

  // Digest every chunk of every tensor in parallel; the combination below is in a fixed order.
  std::vector<ChunkJob> jobs;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    std::span<const std::uint8_t> data = tensors[t]->data;
    std::uint64_t at = 0;
    do {  // an empty tensor still gets one (empty) chunk
      std::uint64_t n = std::min<std::uint64_t>(kChunkBytes, data.size() - at);
      jobs.push_back(ChunkJob{t, data.subspan(at, n)});
      at += n;
    } while (at < data.size());
  }
  std::vector<Sha256Digest> digests(jobs.size());
  ThreadPool pool(std::max(1, n_threads));
  pool.ParallelFor(static_cast<std::int64_t>(jobs.size()), [&](std::int64_t j, int /*thread*/) {
    digests[static_cast<std::size_t>(j)] = Sha256::Hash(jobs[static_cast<std::size_t>(j)].bytes);
    if (release_pages) ReleasePages(jobs[static_cast<std::size_t>(j)].bytes);
  });

  h.UpdateU64(tensors.size());
  std::size_t job = 0;
  for (std::size_t t = 0; t < tensors.size(); ++t) {
    const GgufTensorInfo& info = *tensors[t];
    h.UpdateU64(info.name.size());
    h.Update(info.name);
    h.UpdateU32(static_cast<std::uint32_t>(info.type));
    h.UpdateU32(static_cast<std::uint32_t>(info.dims.size()));
    for (std::int64_t d : info.dims) h.UpdateU64(static_cast<std::uint64_t>(d));
    h.UpdateU64(info.n_bytes);
    Sha256 data_hash;
    std::uint32_t n_chunks = 0;
    for (; job < jobs.size() && jobs[job].tensor == t; ++job, ++n_chunks) data_hash.Update(digests[job]);
    h.UpdateU32(n_chunks);
    h.Update(data_hash.Finish());
  }
  return Id(h.Finish());
}

}  // namespace llmsync::engine
