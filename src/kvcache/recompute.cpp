#include "kvcache/recompute.h"

#include <algorithm>
#include <string>

namespace llmsync::kvcache {

Result<RecomputeResult> RecomputeSequence(engine::Engine& engine, KvManager& kv, engine::SeqId seq,
                                          bool want_logits) {
  LLMSYNC_ASSIGN_OR_RETURN(std::int64_t start, kv.Length(seq));
  LLMSYNC_ASSIGN_OR_RETURN(std::vector<std::int32_t> tokens, kv.Tokens(seq));
  const std::int64_t n = static_cast<std::int64_t>(tokens.size());
  if (want_logits && n == 0) return Status::InvalidArgument("kv: no tokens to compute logits for");
  if (want_logits && start == n) start = n - 1;
  RecomputeResult result;
  const std::int64_t n_vocab = engine.GetModel().Hparams().n_vocab;
  const std::int64_t step = std::max<std::int64_t>(1, engine.MaxBatchTokens());
  engine::Batch batch;
  for (std::int64_t at = start; at < n; at += step) {
    const std::int64_t end = std::min(n, at + step);
    const bool last = end == n && want_logits;
    batch.Clear();
    for (std::int64_t p = at; p < end; ++p) {
      batch.Add(seq, p, tokens[static_cast<std::size_t>(p)], last && p + 1 == n);
    }
    result.logits.assign(last ? static_cast<std::size_t>(n_vocab) : 0, 0.0f);
    Status s = engine.Forward(batch, kv, result.logits);
    if (!s.IsOk())
      return s.WithContext("kv: recompute of positions " + std::to_string(at) + ".." + std::to_string(end));
    LLMSYNC_RETURN_IF_ERROR(kv.Commit(seq));
    result.computed_tokens += end - at;
  }
  return result;
}

}  // namespace llmsync::kvcache
