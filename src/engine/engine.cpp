// The Engine's setup, batch validation and slicing, and the matmul dispatcher. The layer
// computations themselves are in llama_graph.cpp.
#include "engine/engine.h"

#include <algorithm>
#include <string>

namespace llmsync::engine {
namespace {

constexpr std::int64_t kMaxThreads = 256;
constexpr std::int64_t kMaxBatchTokensLimit = 1 << 16;
constexpr std::int64_t kMaxPosition = std::int64_t{1} << 31;
// Rows per matmul task: about four tasks per thread (dynamic scheduling absorbs a slow or
// descheduled thread), in multiples of 16 rows (the kernels' tile height), at most 256 rows so that
// a kernel call streams one long run of rows and its prefetcher stays ahead.
std::int64_t RowsPerTask(std::int64_t total_rows, int threads) {
  std::int64_t rows = total_rows / (4 * static_cast<std::int64_t>(threads));
  rows = (rows + 15) / 16 * 16;
  return std::clamp<std::int64_t>(rows, 16, 256);
}

}  // namespace

Engine::Engine(Token /*unused*/, const Model& model, const EngineOptions& options)
    : model_(model), hp_(model.Hparams()), max_tokens_(options.max_batch_tokens), pool_(options.n_threads) {}

Result<std::unique_ptr<Engine>> Engine::Create(const Model& model, const EngineOptions& options) {
  if (options.n_threads < 1 || options.n_threads > kMaxThreads) {
    return Status::InvalidArgument("engine: threads must be in [1, " + std::to_string(kMaxThreads) +
                                   "], got " + std::to_string(options.n_threads));
  }
  if (options.max_batch_tokens < 1 || options.max_batch_tokens > kMaxBatchTokensLimit) {
    return Status::InvalidArgument("engine: max_batch_tokens must be in [1, " +
                                   std::to_string(kMaxBatchTokensLimit) + "], got " +
                                   std::to_string(options.max_batch_tokens));
  }
  auto engine = std::make_unique<Engine>(Token{}, model, options);
  const ModelHparams& hp = model.Hparams();
  const std::int64_t t = options.max_batch_tokens;
  engine->x_.resize(Rows(t, hp.n_embd));
  engine->xn_.resize(Rows(t, std::max(hp.n_embd, hp.QDim())));
  engine->q_.resize(Rows(t, hp.QDim()));
  engine->k_.resize(Rows(t, hp.KvDim()));
  engine->v_.resize(Rows(t, hp.KvDim()));
  engine->attn_.resize(Rows(t, hp.QDim()));
  engine->gate_.resize(Rows(t, hp.n_ff));
  engine->up_.resize(Rows(t, hp.n_ff));
  engine->rope_cos_.resize(Rows(t, hp.n_rot / 2));
  engine->rope_sin_.resize(Rows(t, hp.n_rot / 2));
  engine->out_rows_.reserve(static_cast<std::size_t>(t));
  engine->seq_ranges_.reserve(static_cast<std::size_t>(t));
  engine->attention_tiles_.reserve(static_cast<std::size_t>(t + 1));
  engine->attention_scratch_.resize(static_cast<std::size_t>(options.n_threads));
  for (AttentionScratch& s : engine->attention_scratch_) s.Resize(hp.n_head / hp.n_head_kv, hp.head_dim);
  engine->prepared_.resize(3);
  return engine;
}

Status Engine::ValidateAndPrepare(const Batch& batch, KvStorage& kv, std::span<float> logits) {
  const std::size_t want = batch.NumLogits() * static_cast<std::size_t>(hp_.n_vocab);
  if (logits.size() != want) {
    return Status::InvalidArgument("engine: logits buffer holds " + std::to_string(logits.size()) +
                                   " floats; the batch asks for " + std::to_string(batch.NumLogits()) +
                                   " rows of " + std::to_string(hp_.n_vocab));
  }
  KvGeometry g = kv.Geometry();
  KvGeometry expected = model_.KvGeometryFor(g.dtype);
  if (!(g == expected)) {
    return Status::InvalidArgument("engine: KV storage geometry (" + g.ToString() +
                                   ") does not match the model (" + expected.ToString() + ")");
  }
  seq_ranges_.clear();
  for (std::size_t i = 0; i < batch.Entries().size(); ++i) {
    const BatchEntry& e = batch.Entries()[i];
    if (e.token < 0 || e.token >= hp_.n_vocab) {
      return Status::InvalidArgument("engine: batch entry " + std::to_string(i) + ": token " +
                                     std::to_string(e.token) + " is outside the vocabulary [0, " +
                                     std::to_string(hp_.n_vocab) + ")");
    }
    if (e.pos < 0 || e.pos >= kMaxPosition) {
      return Status::InvalidArgument("engine: batch entry " + std::to_string(i) + ": position " +
                                     std::to_string(e.pos) + " is out of range");
    }
    auto it = std::find_if(seq_ranges_.begin(), seq_ranges_.end(),
                           [&](const SeqRange& r) { return r.seq == e.seq; });
    if (it == seq_ranges_.end()) {
      seq_ranges_.push_back(SeqRange{e.seq, e.pos, e.pos + 1});
    } else if (e.pos != it->next) {
      return Status::InvalidArgument("engine: batch entry " + std::to_string(i) + ": sequence " +
                                     std::to_string(e.seq) + " continues at position " +
                                     std::to_string(e.pos) + ", expected " + std::to_string(it->next) +
                                     " (a sequence's entries must have consecutive ascending positions)");
    } else {
      ++it->next;
    }
  }
  for (const SeqRange& r : seq_ranges_) {
    Status s = kv.PrepareWrite(r.seq, r.begin, r.next - r.begin);
    if (!s.IsOk()) return s.WithContext("engine");
  }
  return Status::Ok();
}

Status Engine::Forward(const Batch& batch, KvStorage& kv, std::span<float> logits) {
  LLMSYNC_RETURN_IF_ERROR(ValidateAndPrepare(batch, kv, logits));
  const std::vector<BatchEntry>& entries = batch.Entries();
  std::int64_t logits_row = 0;
  for (std::size_t begin = 0; begin < entries.size(); begin += static_cast<std::size_t>(max_tokens_)) {
    std::size_t end = std::min(entries.size(), begin + static_cast<std::size_t>(max_tokens_));
    ForwardSlice(entries, begin, end, kv, logits.data(), logits_row);
    for (std::size_t i = begin; i < end; ++i) logits_row += entries[i].logits ? 1 : 0;
  }
  return Status::Ok();
}

void Engine::MatMuls(const float* x, std::int64_t n, std::int64_t cols, std::span<const MatMulJob> jobs) {
  if (n == 0) return;
  // Prepare the activations once per distinct weight type in the group.
  const PreparedActivations* prepared_for[3] = {};
  std::size_t n_prepared = 0;
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    GgmlType type = jobs[j].w->type;
    for (std::size_t p = 0; p < j; ++p) {
      if (jobs[p].w->type == type) prepared_for[j] = prepared_for[p];
    }
    if (prepared_for[j] == nullptr) {
      PreparedActivations& slot = prepared_[n_prepared++];
      slot.Prepare(type, x, n, cols);
      prepared_for[j] = &slot;
    }
  }
  std::int64_t total_rows = 0;
  for (const MatMulJob& job : jobs) total_rows += job.w->rows;
  const std::int64_t rows_per_task = RowsPerTask(total_rows, pool_.Size());
  std::int64_t task_start[4] = {0, 0, 0, 0};
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    task_start[j + 1] = task_start[j] + (jobs[j].w->rows + rows_per_task - 1) / rows_per_task;
  }
  pool_.ParallelFor(task_start[jobs.size()], [&](std::int64_t task, int /*thread*/) {
    std::size_t j = 0;
    while (task >= task_start[j + 1]) ++j;
    const WeightMatrix& w = *jobs[j].w;
    std::int64_t row_begin = (task - task_start[j]) * rows_per_task;
    std::int64_t row_end = std::min(w.rows, row_begin + rows_per_task);
    MatMulRows(w.type, w.layout, w.data, *prepared_for[j], row_begin, row_end, jobs[j].y, w.rows);
  });
}

}  // namespace llmsync::engine
