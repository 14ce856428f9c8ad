// Robustness: random garbage, random byte flips and random tensor shapes, types and metadata values
// in a GGUF never crash the model loader; it returns a Status. Models that do load (a mutation that
// kept everything consistent) must then run a forward pass without crashing. Runs under ASan/UBSan
// in CI, which turns any out-of-bounds read into a failure.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "gguf_rewrite.h"
#include "test_models.h"

namespace llmsync::engine {
namespace {

using testing::BuildModelFromImage;
using testing::GgufEdits;
using testing::RewriteGguf;
using testing::TensorEdit;
using testing::TinyOptions;

int loaded_count = 0;

// Loads an image; when it loads, runs a few tokens through it.
void LoadAndMaybeRun(const std::string& image) {
  auto m = BuildModelFromImage(image);
  if (!m.IsOk()) {
    EXPECT_FALSE(m.GetStatus().Message().empty());
    return;
  }
  ++loaded_count;
  const Model& model = *m->model;
  auto engine = Engine::Create(model, EngineOptions{});
  ASSERT_TRUE(engine.IsOk());
  ContiguousKvStorage kv(model.KvGeometryFor(KvDtype::kF16), 4);
  ASSERT_TRUE(kv.AddSequence(0).IsOk());
  Batch batch;
  batch.AddSequence(0, 0, {0, 1, static_cast<std::int32_t>(model.Hparams().n_vocab - 1)});
  std::vector<float> logits(static_cast<std::size_t>(model.Hparams().n_vocab));
  EXPECT_TRUE((*engine)->Forward(batch, kv, logits).IsOk());
}

std::string BaseImage(ModelArch arch) {
  auto w = BuildTestModel(Env::Default(), TinyOptions(arch, GgmlType::kQ8_0));
  EXPECT_TRUE(w.IsOk());
  return w->Serialize();
}

TEST(ModelFuzzTest, ByteFlipsNeverCrash) {
  std::mt19937_64 rng(1);
  for (ModelArch arch : {ModelArch::kLlama, ModelArch::kQwen2, ModelArch::kQwen3}) {
    const std::string base = BaseImage(arch);
    auto parsed = GgufFile::Parse(testing::Bytes(base));
    ASSERT_TRUE(parsed.IsOk());
    const std::size_t header = (*parsed)->DataOffset();
    for (int i = 0; i < 300; ++i) {
      std::string image = base;
      int flips = 1 + static_cast<int>(rng() % 8);
      for (int f = 0; f < flips; ++f) {
        // Mostly the header (metadata and tensor infos), where the structure lives.
        std::size_t at = (rng() % 4 != 0) ? rng() % header : rng() % image.size();
        image[at] = static_cast<char>(rng() % 2 ? image[at] ^ (1 << (rng() % 8)) : static_cast<char>(rng()));
      }
      LoadAndMaybeRun(image);
    }
  }
}

TEST(ModelFuzzTest, RandomShapesTypesAndValuesNeverCrash) {
  std::mt19937_64 rng(2);
  const std::vector<GgmlType> types = {GgmlType::kF32,  GgmlType::kF16, GgmlType::kBf16, GgmlType::kQ8_0,
                                       GgmlType::kQ4_0, GgmlType::kQ4K, GgmlType::kQ6K,  GgmlType::kQ4_1,
                                       GgmlType::kI32,  GgmlType::kQ5K};
  const std::vector<std::int64_t> dims = {1, 2, 16, 31, 32, 64, 128, 256, 512};
  for (ModelArch arch : {ModelArch::kLlama, ModelArch::kQwen2, ModelArch::kQwen3}) {
    const std::string base = BaseImage(arch);
    for (int i = 0; i < 150; ++i) {
      std::uint64_t victim = rng() % 30;
      std::uint64_t counter = 0;
      GgufEdits e;
      e.tensor = [&](TensorEdit& t) {
        if (counter++ != victim) return true;
        switch (rng() % 4) {
          case 0: return false;  // drop it
          case 1: t.dims = {dims[rng() % dims.size()], dims[rng() % dims.size()]}; break;
          case 2: t.dims.push_back(1 + static_cast<std::int64_t>(rng() % 3)); break;
          default: t.type = types[rng() % types.size()]; break;
        }
        auto row = RowBytes(t.type, static_cast<std::uint64_t>(t.dims[0]));
        if (!row.IsOk()) t.dims[0] = GetGgmlTypeInfo(t.type).block_elems;
        std::uint64_t n = *RowBytes(t.type, static_cast<std::uint64_t>(t.dims[0]));
        for (std::size_t d = 1; d < t.dims.size(); ++d) n *= static_cast<std::uint64_t>(t.dims[d]);
        t.data.resize(n);
        for (auto& b : t.data) b = static_cast<std::uint8_t>(rng());
        return true;
      };
      std::uint64_t key_victim = rng() % 24;
      std::uint64_t key_counter = 0;
      e.metadata = [&](const GgufKeyValue& kv, GgufWriter& w) {
        if (key_counter++ != key_victim || i % 2 == 0) return true;
        switch (rng() % 4) {
          case 0: w.SetUint32(kv.key, static_cast<std::uint32_t>(rng() % 300)); break;
          case 1: w.SetInt32(kv.key, -static_cast<std::int32_t>(rng() % 5)); break;
          case 2: w.SetFloat32(kv.key, static_cast<float>(rng() % 1000) / 7.0f); break;
          default: w.SetString(kv.key, "garbage"); break;
        }
        return false;
      };
      auto image = RewriteGguf(base, e);
      ASSERT_TRUE(image.IsOk()) << image.GetStatus().ToString();
      LoadAndMaybeRun(*image);
    }
  }
  std::cout << "models that still loaded after mutation: " << loaded_count << "\n";
}

TEST(ModelFuzzTest, RandomGarbageNeverCrashes) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    std::string image(rng() % 4096, '\0');
    for (char& c : image) c = static_cast<char>(rng());
    if (i % 2 == 0 && image.size() >= 8) image.replace(0, 8, std::string("GGUF\x03\0\0\0", 8));
    LoadAndMaybeRun(image);
  }
}

}  // namespace
}  // namespace llmsync::engine
