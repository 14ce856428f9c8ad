// `llmsync bench kernels`: single-threaded throughput of MatMulRows per weight type and shape, as
// one JSON object. Each case is timed twice:
//   - "cold": the call rotates through copies of the weight matrix filling --working-set-mb, so
//     the weights stream from DRAM as they do in a real forward pass (each layer is read once per
//     step and the whole model does not fit in cache);
//   - "hot": the same matrix every call, so it sits in cache as far as its size allows.
// A case's time is the median over repetitions of the per-call time (--seconds of calls each),
// measured in this thread's CPU time: the machine is shared, and wall time would mostly measure
// the other processes. The wall-clock median is printed beside it ("*_wall_ms").
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "base/env.h"
#include "cli/commands.h"
#include "engine/ggml_type.h"
#include "engine/matmul.h"
#include "engine/quant/quant.h"
#include "engine/quant/repack.h"

namespace llmsync::cli {
namespace {

struct BenchKernelsArgs {
  std::string types = "q8_0,q4_0,q4_k,q6_k,f16,bf16,f32";
  std::string isa;  // empty: the active set
  std::string layout = "auto";
  std::int64_t cols = 2048;
  std::vector<std::int64_t> rows = {2048, 8192};
  std::vector<std::int64_t> tokens = {1, 32};
  double seconds = 0.25;
  int repetitions = 5;
  std::int64_t working_set_mb = 1024;
};

struct Timing {
  double median_s = 0;       // CPU time per call
  double median_wall_s = 0;  // wall time per call
};

// This thread's CPU time in seconds (a benchmark-only clock; Env has none).
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median per-call CPU and wall seconds of `call(i)` over repetitions of about `seconds` CPU each.
template <typename Call>
Timing TimeCalls(Env* env, double seconds, int repetitions, Call call) {
  std::int64_t i = 0;
  call(i++);  // warm-up
  std::vector<double> cpu, wall;
  for (int rep = 0; rep < repetitions; ++rep) {
    const double cpu_start = ThreadCpuSeconds();
    const std::int64_t wall_start = env->NowMicros();
    std::int64_t n = 0;
    double elapsed = 0;
    do {
      call(i++);
      ++n;
      elapsed = ThreadCpuSeconds() - cpu_start;
    } while (elapsed < seconds);
    cpu.push_back(elapsed / static_cast<double>(n));
    wall.push_back(static_cast<double>(env->NowMicros() - wall_start) / 1e6 / static_cast<double>(n));
  }
  return {Median(cpu), Median(wall)};
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t comma = std::min(s.find(',', at), s.size());
    if (comma > at) out.push_back(s.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

std::string CaseJson(engine::GgmlType type, engine::WeightLayout layout, std::int64_t rows, std::int64_t cols,
                     std::int64_t tokens, std::uint64_t weight_bytes, const Timing& cold, const Timing& hot) {
  const double flops =
      2.0 * static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(tokens);
  const auto bytes = static_cast<double>(weight_bytes);
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "{\"type\": \"%s\", \"layout\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"tokens\": %lld, "
      "\"weight_mb\": %.2f, "
      "\"cold_ms\": %.4f, \"cold_gflops\": %.2f, \"cold_weight_gbs\": %.2f, \"cold_wall_ms\": %.4f, "
      "\"hot_ms\": %.4f, \"hot_gflops\": %.2f, \"hot_weight_gbs\": %.2f, \"hot_wall_ms\": %.4f}",
      std::string(engine::GgmlTypeName(type)).c_str(),
      layout == engine::WeightLayout::kInterleaved16 ? "interleaved16" : "rows", static_cast<long long>(rows),
      static_cast<long long>(cols), static_cast<long long>(tokens), bytes / 1e6, cold.median_s * 1e3,
      flops / cold.median_s / 1e9, bytes / cold.median_s / 1e9, cold.median_wall_s * 1e3, hot.median_s * 1e3,
      flops / hot.median_s / 1e9, bytes / hot.median_s / 1e9, hot.median_wall_s * 1e3);
  return buf;
}

int RunBenchKernels(const BenchKernelsArgs& args) {
  engine::KernelIsa isa = engine::ActiveKernelIsa();
  if (args.isa == "scalar") {
    isa = engine::KernelIsa::kScalar;
  } else if (args.isa == "avx2") {
    isa = engine::KernelIsa::kAvx2;
  } else if (args.isa == "avx512vnni") {
    isa = engine::KernelIsa::kAvx512Vnni;
  } else if (!args.isa.empty()) {
    std::cerr << "error: --isa must be scalar, avx2 or avx512vnni\n";
    return 2;
  }
  if (!engine::IsKernelIsaSupported(isa)) {
    std::cerr << "error: this CPU cannot run the " << engine::KernelIsaName(isa) << " kernels\n";
    return 1;
  }
  if (args.layout != "auto" && args.layout != "rows" && args.layout != "interleaved") {
    std::cerr << "error: --layout must be auto, rows or interleaved\n";
    return 2;
  }
  // auto: as the engine stores the weights for this kernel set (Q4_0 interleaved under AVX-512 VNNI).
  const auto layout_for = [&](engine::GgmlType type) {
    const bool interleave =
        type == engine::GgmlType::kQ4_0 &&
        (args.layout == "interleaved" || (args.layout == "auto" && isa == engine::KernelIsa::kAvx512Vnni));
    return interleave ? engine::WeightLayout::kInterleaved16 : engine::WeightLayout::kRows;
  };
  const auto positive = [](const std::vector<std::int64_t>& v) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](std::int64_t n) { return n > 0; });
  };
  if (args.cols <= 0 || args.seconds <= 0 || args.repetitions <= 0 || args.working_set_mb < 0 ||
      !positive(args.rows) || !positive(args.tokens)) {
    std::cerr << "error: --cols, --rows, --tokens, --seconds and --repetitions must be positive\n";
    return 2;
  }

  std::vector<engine::GgmlType> types;
  for (const std::string& name : SplitCommas(args.types)) {
    Result<engine::GgmlType> type = engine::ParseGgmlType(name);
    if (!type.IsOk() || !engine::IsComputeSupported(*type)) {
      std::cerr << "error: --types: '" << name << "' is not a compute type\n";
      return 2;
    }
    if (!engine::RowBytes(*type, static_cast<std::uint64_t>(args.cols)).IsOk()) {
      std::cerr << "error: --cols " << args.cols << " is not a multiple of the " << name << " block\n";
      return 2;
    }
    types.push_back(*type);
  }
  Env* env = Env::Default();
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::string results;
  for (engine::GgmlType type : types) {
    for (std::int64_t rows : args.rows) {
      const std::uint64_t row_bytes = *engine::RowBytes(type, static_cast<std::uint64_t>(args.cols));
      const engine::WeightLayout layout = layout_for(type);
      std::vector<std::uint8_t> rows_layout(row_bytes * static_cast<std::uint64_t>(rows));
      std::vector<float> source(static_cast<std::size_t>(args.cols));
      for (std::int64_t r = 0; r < rows; ++r) {
        for (float& v : source) v = normal(rng);
        engine::QuantizeRow(type, source.data(), rows_layout.data() + r * row_bytes, args.cols);
      }
      const std::uint64_t matrix_bytes =
          layout == engine::WeightLayout::kInterleaved16
              ? static_cast<std::uint64_t>(engine::InterleavedBytes(rows, args.cols))
              : rows_layout.size();
      // Copies of the matrix filling the working set; copy 0 is the hot one.
      const std::uint64_t copies = std::max<std::uint64_t>(
          1, static_cast<std::uint64_t>(args.working_set_mb) * (1u << 20) / matrix_bytes);
      std::vector<std::uint8_t> weights(matrix_bytes * copies);
      if (layout == engine::WeightLayout::kInterleaved16) {
        engine::InterleaveQ4_0Rows(rows_layout.data(), 0, rows, rows, args.cols, weights.data());
      } else {
        std::memcpy(weights.data(), rows_layout.data(), matrix_bytes);
      }
      for (std::uint64_t c = 1; c < copies; ++c) {
        std::memcpy(weights.data() + c * matrix_bytes, weights.data(), matrix_bytes);
      }
      for (std::int64_t tokens : args.tokens) {
        std::vector<float> x(static_cast<std::size_t>(tokens * args.cols));
        for (float& v : x) v = normal(rng) * 50.0f;
        engine::PreparedActivations prepared;
        prepared.PrepareWith(isa, type, x.data(), tokens, args.cols);
        std::vector<float> y(static_cast<std::size_t>(tokens * rows));
        auto run = [&](std::uint64_t copy) {
          engine::MatMulRowsWith(isa, type, layout, weights.data() + copy * matrix_bytes, prepared, 0, rows,
                                 y.data(), rows);
        };
        const Timing cold = TimeCalls(env, args.seconds, args.repetitions,
                                      [&](std::int64_t i) { run(static_cast<std::uint64_t>(i) % copies); });
        const Timing hot = TimeCalls(env, args.seconds, args.repetitions, [&](std::int64_t) { run(0); });
        if (!results.empty()) results += ",\n  ";
        results += CaseJson(type, layout, rows, args.cols, tokens, matrix_bytes, cold, hot);
      }
    }
  }
  std::cout << "{\"benchmark\": \"kernels\", \"isa\": \"" << engine::KernelIsaName(isa)
            << "\", \"threads\": 1, \"working_set_mb\": " << args.working_set_mb << ", \"results\": [\n  "
            << results << "\n]}\n";
  return 0;
}

}  // namespace

void AddBenchKernelsCommands(CLI::App& app, CliState& state) {
  CLI::App* bench = GetOrAddSubcommand(app, "bench", "Benchmarks that print JSON");
  CLI::App* kernels =
      bench->add_subcommand("kernels", "Single-threaded MatMulRows throughput per weight type");
  auto args = std::make_shared<BenchKernelsArgs>();
  kernels->add_option("--types", args->types, "Comma-separated weight types")->capture_default_str();
  kernels->add_option("--isa", args->isa, "Kernel set: scalar or avx2 (default: the active one)");
  kernels
      ->add_option("--layout", args->layout,
                   "Weight layout: auto (as the engine loads them), rows (as in GGUF) or interleaved (Q4_0)")
      ->capture_default_str();
  kernels->add_option("--cols", args->cols, "Columns (the dot product length)")->capture_default_str();
  kernels->add_option("--rows", args->rows, "Row counts to measure")->capture_default_str();
  kernels->add_option("--tokens", args->tokens, "Token counts to measure")->capture_default_str();
  kernels->add_option("--seconds", args->seconds, "Seconds per repetition")->capture_default_str();
  kernels->add_option("--repetitions", args->repetitions, "Repetitions (median reported)")
      ->capture_default_str();
  kernels->add_option("--working-set-mb", args->working_set_mb, "Bytes of weight copies cycled by cold runs")
      ->capture_default_str();
  kernels->callback([args, &state] { state.exit_code = RunBenchKernels(*args); });
}

}  // namespace llmsync::cli
