// Per-token operations of the Llama-family forward pass: RMSNorm, rotary position embeddings and
// the SwiGLU activation.
//
// Each function works on one token's row with a fixed, sequential order of operations and no
// dependence on other tokens, which is what keeps the forward pass batch-invariant. They are plain
// scalar code on purpose: compiled without FMA contraction (ISO C++ mode), so results are the same
// on every x86-64 machine whatever its vector extensions.
//
// Thread safety: pure functions over caller-owned memory.
#pragma once

#include <cstdint>

#include "engine/hparams.h"

namespace llmsync::engine {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]. The sum of squares accumulates in double, in
// order. out may equal x.
void RmsNormRow(const float* x, const float* w, float eps, std::int64_t n, float* out);

// Fills cos_out/sin_out[0 .. n_rot/2) for position `pos`:
// theta_i = pos * freq_scale * base^(-2i / n_rot) / freq_factors[i] (factors optional, may be null),
// computed in double and rounded to float.
void RopeAngles(std::int64_t pos, std::int64_t n_rot, float freq_base, float freq_scale,
                const float* freq_factors, float* cos_out, float* sin_out);

// Rotates the first n_rot elements of one head vector in place. kNorm rotates the pairs
// (x[2i], x[2i+1]); kNeox the pairs (x[i], x[i + n_rot/2]). Elements past n_rot are unchanged.
void ApplyRope(RopeStyle style, std::int64_t n_rot, const float* cos_v, const float* sin_v, float* head);

// gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
void SwiGluRow(float* gate, const float* up, std::int64_t n);

// y[i] += x[i].
void AddRow(float* y, const float* x, std::int64_t n);

}  // namespace llmsync::engine
