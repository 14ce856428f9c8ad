// RunParams: what a client asks of one generation run, validated and encoded for the run record.
//
// The store keeps a run's parameters as an opaque string; this file owns that encoding (a small
// line-based "key=value" text with hex-escaped stop strings and a version line), so a run restarted
// after a crash continues with exactly the parameters it was started with.
//
// Thread safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampling.h"
#include "llmsync/status.h"

namespace llmsync::runs {

struct RunLimits {
  std::int32_t max_tokens = 4096;    // the most a run may generate
  std::size_t max_stop_strings = 8;  // OpenAI's limit is 4; be a little generous
  std::size_t max_stop_bytes = 256;  // per stop string
  std::int64_t max_lease_s = 86400;
};

struct RunParams {
  std::int32_t max_tokens = 256;
  engine::SamplingParams sampling;
  std::vector<std::string> stop;      // generation ends before the first occurrence of any of these
  std::int64_t lease_s = 0;           // keep the result's KV warm this long (0: no lease)
  bool add_generation_prompt = true;  // false: continue the last node's text as is
  std::string constraint;  // structured output spec for SchedulerDeps::constraint_factory; empty: none
  // Computes the prompt's KV and ends: nothing is sampled and no result node is written, the KV
  // stays in the cache for the runs that extend the prompt (a branch compacted ahead of its turn).
  bool prefill_only = false;
  // Opaque to runs: what the API view that started the run keeps with it, stored in the run record
  // (the Responses view's store/background flags and echoed fields). Never affects generation.
  std::string view_state;
};

// kInvalidArgument naming the field.
Status ValidateRunParams(const RunParams& params, const RunLimits& limits);

std::string EncodeRunParams(const RunParams& params);
// kDataLoss when the text is not a valid encoding.
Result<RunParams> DecodeRunParams(std::string_view text);

}  // namespace llmsync::runs
