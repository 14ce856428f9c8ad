// A counter-based random number generator: the random draw for a token is a pure function of the
// run's seed and the token's position, so a run resumed after a crash draws exactly what the
// uninterrupted run would have drawn, and no generator state needs to be persisted.
//
// The mixing function is SplitMix64's finalizer applied to seed and counter. Its output is part of
// llmsync's reproducibility contract: changing it changes every seeded generation, so it must not
// change without a format note.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

namespace llmsync::engine {

// SplitMix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
constexpr std::uint64_t SplitMix64Mix(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// 64 random bits for (seed, counter, stream). `stream` separates independent uses of one
// (seed, counter) pair (for example the sampler's draw and a test weight generator).
constexpr std::uint64_t CounterRandom64(std::uint64_t seed, std::uint64_t counter, std::uint64_t stream = 0) {
  std::uint64_t key = SplitMix64Mix(seed + 0x9e3779b97f4a7c15ULL * (stream + 1));
  return SplitMix64Mix(key ^ SplitMix64Mix(counter + 0x632be59bd9b4e019ULL));
}

// A uniform double in [0, 1) with 53 random bits.
constexpr double CounterUniform(std::uint64_t seed, std::uint64_t counter, std::uint64_t stream = 0) {
  return static_cast<double>(CounterRandom64(seed, counter, stream) >> 11) * 0x1.0p-53;
}

}  // namespace llmsync::engine
