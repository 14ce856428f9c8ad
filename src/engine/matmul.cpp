// Kernel-set selection, activation preparation and the MatMulRows dispatch.
#include "engine/matmul.h"

#include <cassert>
#include <cstdlib>
#include <cstring>
#include <limits>

#if defined(LLMSYNC_KERNELS_AVX2)
#include <cpuid.h>
#endif

#include "engine/kernels/kernels.h"

namespace llmsync::engine {
namespace {

bool CpuHasAvx2() {
#if defined(LLMSYNC_KERNELS_AVX2)
  __builtin_cpu_init();
  // avx2 also confirms that the OS saves the YMM state, which F16C needs too. F16C is read from
  // CPUID leaf 1 (ECX bit 29) because not every compiler knows the "f16c" feature string.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) != 0 && (ecx & (1u << 29)) != 0;
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
  return false;
#endif
}

bool CpuHasAvx512Vnni() {
#if defined(LLMSYNC_KERNELS_AVX2)
  __builtin_cpu_init();
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

const KernelSet& Kernels([[maybe_unused]] KernelIsa isa) {
#if defined(LLMSYNC_KERNELS_AVX2)
  if (isa == KernelIsa::kAvx2) return Avx2Kernels();
  if (isa == KernelIsa::kAvx512Vnni) return Avx512VnniKernels();
#endif
  return ScalarKernels();
}

MatMulFn KernelFor(const KernelSet& set, GgmlType type, WeightLayout layout) {
  if (layout == WeightLayout::kInterleaved16) return type == GgmlType::kQ4_0 ? set.q4_0_interleaved : nullptr;
  switch (type) {
    case GgmlType::kF32: return set.f32;
    case GgmlType::kF16: return set.f16;
    case GgmlType::kBf16: return set.bf16;
    case GgmlType::kQ8_0: return set.q8_0;
    case GgmlType::kQ4_0: return set.q4_0;
    case GgmlType::kQ4K: return set.q4k;
    case GgmlType::kQ6K: return set.q6k;
    default: return nullptr;
  }
}

}  // namespace

KernelIsa ChooseKernelIsa(const char* force_scalar_env, bool cpu_has_avx2, bool cpu_has_avx512_vnni) {
  const bool force_scalar = force_scalar_env != nullptr && std::strcmp(force_scalar_env, "1") == 0;
  const bool force_avx2 = force_scalar_env != nullptr && std::strcmp(force_scalar_env, "avx2") == 0;
  if (force_scalar || !cpu_has_avx2) return KernelIsa::kScalar;
  return cpu_has_avx512_vnni && !force_avx2 ? KernelIsa::kAvx512Vnni : KernelIsa::kAvx2;
}

KernelIsa ActiveKernelIsa() {
  static const KernelIsa kIsa =
      ChooseKernelIsa(std::getenv("LLMSYNC_FORCE_SCALAR"), CpuHasAvx2(), CpuHasAvx512Vnni());
  return kIsa;
}

bool IsKernelIsaSupported(KernelIsa isa) {
  static const bool kHasAvx2 = CpuHasAvx2();
  static const bool kHasAvx512Vnni = CpuHasAvx512Vnni();
  switch (isa) {
    case KernelIsa::kScalar: return true;
    case KernelIsa::kAvx2: return kHasAvx2;
    case KernelIsa::kAvx512Vnni: return kHasAvx512Vnni;
  }
  return false;
}

std::string_view KernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::kAvx2: return "avx2";
    case KernelIsa::kAvx512Vnni: return "avx512vnni";
    default: return "scalar";
  }
}

WeightLayout PreferredLayout(GgmlType type) {
  return type == GgmlType::kQ4_0 && ActiveKernelIsa() == KernelIsa::kAvx512Vnni ? WeightLayout::kInterleaved16
                                                                                : WeightLayout::kRows;
}

ActivationFormat ActivationFormatFor(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::kQ8_0:
    case GgmlType::kQ4_0: return ActivationFormat::kQ8Block32;
    case GgmlType::kQ4K:
    case GgmlType::kQ6K: return ActivationFormat::kQ8Block256;
    default: return ActivationFormat::kF32;
  }
}

void PreparedActivations::Prepare(GgmlType weight_type, const float* x, std::int64_t n_tokens,
                                  std::int64_t n_cols) {
  PrepareWith(ActiveKernelIsa(), weight_type, x, n_tokens, n_cols);
}

void PreparedActivations::PrepareWith(KernelIsa isa, GgmlType weight_type, const float* x,
                                      std::int64_t n_tokens, std::int64_t n_cols) {
  assert(IsComputeSupported(weight_type));
  assert(n_cols % GetGgmlTypeInfo(weight_type).block_elems == 0);
  assert(n_cols >= 0 && n_cols < (std::int64_t{1} << 27));
  weight_type_ = weight_type;
  format_ = ActivationFormatFor(weight_type);
  n_tokens_ = n_tokens;
  n_cols_ = n_cols;
  const auto total = static_cast<std::size_t>(n_tokens * n_cols);
  if (format_ == ActivationFormat::kF32) {
    scales_per_row_ = 0;
    sums_per_row_ = 0;
    if (f32_.size() < total) f32_.resize(total);
    if (total > 0) std::memcpy(f32_.data(), x, total * sizeof(float));
    return;
  }
  const int block = format_ == ActivationFormat::kQ8Block32 ? 32 : 256;
  const int sum_group = format_ == ActivationFormat::kQ8Block32 ? 32 : 16;
  scales_per_row_ = n_cols / block;
  sums_per_row_ = n_cols / sum_group;
  if (q8_.size() < total) q8_.resize(total);
  if (scales_.size() < static_cast<std::size_t>(n_tokens * scales_per_row_)) {
    scales_.resize(static_cast<std::size_t>(n_tokens * scales_per_row_));
  }
  if (sums_.size() < static_cast<std::size_t>(n_tokens * sums_per_row_)) {
    sums_.resize(static_cast<std::size_t>(n_tokens * sums_per_row_));
  }
  // Rows are contiguous and n_cols is a multiple of the block, so the whole batch is one run.
  if (total > 0)
    Kernels(isa).quantize_q8(x, n_tokens * n_cols, block, sum_group, q8_.data(), scales_.data(),
                             sums_.data());
}

void MatMulRows(GgmlType weight_type, WeightLayout layout, const std::uint8_t* w,
                const PreparedActivations& x, std::int64_t row_begin, std::int64_t row_end, float* y,
                std::int64_t y_stride) {
  MatMulRowsWith(ActiveKernelIsa(), weight_type, layout, w, x, row_begin, row_end, y, y_stride);
}

void MatMulRowsWith(KernelIsa isa, GgmlType weight_type, WeightLayout layout, const std::uint8_t* w,
                    const PreparedActivations& x, std::int64_t row_begin, std::int64_t row_end, float* y,
                    std::int64_t y_stride) {
  const MatMulFn fn = KernelFor(Kernels(isa), weight_type, layout);
  const bool prepared_for_type = fn != nullptr && x.Format() == ActivationFormatFor(weight_type);
  assert(prepared_for_type && "MatMulRows: activations prepared for another activation format");
  if (!prepared_for_type) {
    // Release builds: poison the outputs rather than read activations in the wrong format.
    for (std::int64_t t = 0; t < x.Tokens(); ++t) {
      for (std::int64_t r = row_begin; r < row_end; ++r)
        y[t * y_stride + r] = std::numeric_limits<float>::quiet_NaN();
    }
    return;
  }
  if (row_begin >= row_end || x.Tokens() == 0) return;
  const ActivationView view{x.Tokens(),    x.Cols(),    x.F32Row(0),      x.Q8Row(0),
                            x.ScaleRow(0), x.SumRow(0), x.ScalesPerRow(), x.SumsPerRow()};
  fn(w, view, row_begin, row_end, y, y_stride);
}

}  // namespace llmsync::engine
