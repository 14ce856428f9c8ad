// Snapshots on disk: a restarted manager restores instead of recomputing; corrupt, truncated or
// mismatched files are detected, counted, deleted and recomputed (results stay exact); failing
// snapshot writes (disk full, failed sync or rename) drop the block and leave no file behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "base/fault_injection_env.h"
#include "kv_test_util.h"

namespace llmsync::kvcache {
namespace {

using ::llmsync::testing::TestDir;
using testing::Concat;
using testing::ExpectMatchesReference;
using testing::Logits;
using testing::MakeTinyModel;
using testing::OpenKv;
using testing::PrefillAll;
using testing::RandomTokens;
using testing::ReferenceLogits;
using testing::SameBits;
using testing::TinyKvOptions;
using testing::Tokens;

std::vector<std::string> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class SnapshotRecoveryTest : public ::testing::Test {
 protected:
  // Computes `path_` in a manager over dir_ and flushes every span to disk.
  void WriteSnapshots() {
    auto kv = OpenKv(TinyKvOptions(m_, dir_.Path(), 64, 16));
    auto acquired = kv->Acquire("t", path_);
    ASSERT_TRUE(acquired.IsOk());
    ExpectMatchesReference(PrefillAll(m_, *kv, acquired->seq.Id()), want_);
    acquired->seq.Release();
    ASSERT_TRUE(kv->FlushToDisk().IsOk());
    EXPECT_EQ(kv->Stats().disk_files, 4);  // 3 full blocks and a partial one
  }

  // Opens a fresh manager over dir_, acquires path_ and checks the continuation is exact.
  KvAccount AcquireAndCheck(KvStats* stats = nullptr) {
    auto kv = OpenKv(TinyKvOptions(m_, dir_.Path(), 64, 16));
    auto acquired = kv->Acquire("t", path_);
    EXPECT_TRUE(acquired.IsOk());
    if (!acquired.IsOk()) return {};
    ExpectMatchesReference(PrefillAll(m_, *kv, acquired->seq.Id()), want_);
    auto r = RecomputeSequence(*m_.engine, *kv, acquired->seq.Id());
    EXPECT_TRUE(r.IsOk());
    if (r.IsOk()) {
      EXPECT_TRUE(SameBits(r->logits, want_.back()));
    }
    if (stats != nullptr) *stats = kv->Stats();
    return acquired->account;
  }

  // The snapshot file of the block holding positions [16 * i, ...), found by its start field.
  std::string FileOfBlock(int i) {
    for (const std::string& f : ListFiles(dir_.Path())) {
      std::string bytes = ReadAll(f);
      auto header = DecodeSnapshotHeader(
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
      if (header.IsOk() && header->start == 16 * i) return f;
    }
    ADD_FAILURE() << "no snapshot for block " << i;
    return "";
  }

  testing::TinyModel m_ = MakeTinyModel();
  TestDir dir_;
  Tokens path_ = RandomTokens(57, m_.model->Hparams().n_vocab, 11);
  std::vector<Logits> want_ = ReferenceLogits(m_, path_);
};

TEST_F(SnapshotRecoveryTest, RestartRestoresEverySpanFromDisk) {
  WriteSnapshots();
  KvStats st;
  KvAccount acc = AcquireAndCheck(&st);
  EXPECT_EQ(acc.disk_tokens, 57);
  EXPECT_EQ(acc.recompute_tokens, 0);
  EXPECT_EQ(acc.reason, DivergeReason::kNone);
  EXPECT_EQ(st.restores, 4u);
}

struct Corruption {
  std::string name;
  std::function<void(std::string&)> apply;
};

TEST_F(SnapshotRecoveryTest, CorruptSnapshotsAreDetectedAndRecomputed) {
  const std::vector<Corruption> corruptions = {
      {"flip a payload byte", [](std::string& b) { b[b.size() / 2] ^= 0x01; }},
      {"flip a token", [](std::string& b) { b[kSnapshotFixedHeaderBytes] ^= 0x40; }},
      {"flip the checksum", [](std::string& b) { b.back() ^= 0x80; }},
      {"flip the version", [](std::string& b) { b[8] ^= 0x02; }},
      {"flip the model fingerprint", [](std::string& b) { b[60] ^= 0x10; }},
      {"truncate by one byte", [](std::string& b) { b.pop_back(); }},
      {"truncate to half", [](std::string& b) { b.resize(b.size() / 2); }},
      {"truncate inside the header", [](std::string& b) { b.resize(40); }},
      {"empty file", [](std::string& b) { b.clear(); }},
      {"append garbage", [](std::string& b) { b += "garbage"; }},
  };
  for (const Corruption& c : corruptions) {
    SCOPED_TRACE(c.name);
    for (const std::string& f : ListFiles(dir_.Path())) std::filesystem::remove(f);
    WriteSnapshots();
    const std::string victim = FileOfBlock(2);  // positions 32..47
    std::string bytes = ReadAll(victim);
    c.apply(bytes);
    WriteAll(victim, bytes);

    KvStats st;
    KvAccount acc = AcquireAndCheck(&st);
    EXPECT_EQ(acc.disk_tokens, 32) << "blocks 0 and 1 restore; block 2 is rejected";
    EXPECT_EQ(acc.diverged_at, 32);
    EXPECT_EQ(acc.recompute_tokens, 25);
    EXPECT_EQ(st.snapshots_rejected, 1u);
    EXPECT_TRUE(acc.reason == DivergeReason::kSnapshotRejected || acc.reason == DivergeReason::kNotCached)
        << DivergeReasonName(acc.reason);
    EXPECT_FALSE(std::filesystem::exists(victim) && ReadAll(victim) == bytes)
        << "a rejected file is not kept";
  }
}

TEST_F(SnapshotRecoveryTest, SnapshotOfAnotherModelIsRejected) {
  WriteSnapshots();
  // The same tokens through a model with other weights (same geometry): its snapshot of block 0,
  // renamed to the name this model would use, must not be restored.
  testing::TinyModel other = MakeTinyModel(testing::TinyModelOptions(/*seed=*/8));
  ASSERT_NE(other.fingerprint, m_.fingerprint);
  TestDir other_dir;
  {
    auto kv = OpenKv(TinyKvOptions(other, other_dir.Path(), 64, 16));
    auto acquired = kv->Acquire("t", path_);
    ASSERT_TRUE(acquired.IsOk());
    PrefillAll(other, *kv, acquired->seq.Id());
    acquired->seq.Release();
    ASSERT_TRUE(kv->FlushToDisk().IsOk());
  }
  std::string ours = FileOfBlock(0);
  std::string theirs;
  for (const std::string& f : ListFiles(other_dir.Path())) {
    std::string bytes = ReadAll(f);
    auto header = DecodeSnapshotHeader(
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    if (header.IsOk() && header->start == 0) theirs = bytes;
  }
  ASSERT_FALSE(theirs.empty());
  WriteAll(ours, theirs);
  KvStats st;
  KvAccount acc = AcquireAndCheck(&st);
  EXPECT_EQ(acc.disk_tokens, 0);
  EXPECT_EQ(acc.recompute_tokens, 57);
  EXPECT_EQ(st.snapshots_rejected, 1u);
}

TEST_F(SnapshotRecoveryTest, StartupRemovesStaleTemporaryFilesAndIgnoresOtherModels) {
  WriteSnapshots();
  const std::string mine = FileOfBlock(0);
  const std::string tmp = mine + ".tmp";
  WriteAll(tmp, "half-written");
  const std::string foreign = dir_.File(std::string(64, 'a') + "-" + std::string(64, 'b') + ".kvs");
  WriteAll(foreign, "another model's business");
  KvAccount acc = AcquireAndCheck();
  EXPECT_EQ(acc.disk_tokens, 57);
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_TRUE(std::filesystem::exists(foreign));
}

// Spill writes fail in every way FaultInjectionEnv can arrange: the block is dropped (counted), no
// file or temporary is left, and the path is recomputed exactly.
TEST_F(SnapshotRecoveryTest, FailingSnapshotWritesDropTheBlock) {
  struct Fault {
    std::string name;
    std::function<void(FaultInjectionEnv&)> arm;
  };
  const std::vector<Fault> faults = {
      {"disk full", [](FaultInjectionEnv& e) { e.SetWriteBudget(100); }},
      {"write error",
       [](FaultInjectionEnv& e) { e.FailNext(FaultOp::kWrite, 1000, Status::Internal("EIO")); }},
      {"sync error", [](FaultInjectionEnv& e) { e.FailNext(FaultOp::kSync, 1000, Status::Internal("EIO")); }},
      {"rename error",
       [](FaultInjectionEnv& e) { e.FailNext(FaultOp::kRename, 1000, Status::Internal("EIO")); }},
  };
  for (const Fault& f : faults) {
    SCOPED_TRACE(f.name);
    TestDir dir;
    FaultInjectionEnv env(Env::Default());
    auto options = TinyKvOptions(m_, dir.Path(), 64, 16);
    options.env = &env;
    auto kv = OpenKv(options);
    {
      auto acquired = kv->Acquire("t", path_);
      ASSERT_TRUE(acquired.IsOk());
      PrefillAll(m_, *kv, acquired->seq.Id());
    }
    f.arm(env);
    EXPECT_FALSE(kv->FlushToDisk().IsOk());
    KvStats st = kv->Stats();
    EXPECT_EQ(st.spill_failures, 4u);
    EXPECT_EQ(st.disk_files, 0);
    EXPECT_TRUE(ListFiles(dir.Path()).empty()) << "no partial or temporary file may remain";
    env.ClearFaults();
    env.SetWriteBudget(-1);
    // RAM still serves the path; a restart has nothing on disk and recomputes exactly.
    auto again = kv->Acquire("t", path_);
    ASSERT_TRUE(again.IsOk());
    EXPECT_EQ(again->account.ram_tokens, 57);
    again->seq.Release();
    kv.reset();
    auto restarted = OpenKv(options);
    auto fresh = restarted->Acquire("t", path_);
    ASSERT_TRUE(fresh.IsOk());
    EXPECT_EQ(fresh->account.recompute_tokens, 57);
    ExpectMatchesReference(PrefillAll(m_, *restarted, fresh->seq.Id()), want_);
  }
}

// Eviction under memory pressure while every spill fails: blocks are dropped, results stay exact.
TEST_F(SnapshotRecoveryTest, EvictionWithAFullDiskStaysExact) {
  TestDir dir;
  FaultInjectionEnv env(Env::Default());
  auto options = TinyKvOptions(m_, dir.Path(), 6, 16);
  options.env = &env;
  env.SetWriteBudget(0);
  auto kv = OpenKv(options);
  for (std::uint32_t s = 0; s < 6; ++s) {
    Tokens path = RandomTokens(40, m_.model->Hparams().n_vocab, 500 + s);
    std::vector<Logits> want = ReferenceLogits(m_, path);
    auto acquired = kv->Acquire("t", path);
    ASSERT_TRUE(acquired.IsOk());
    auto r = RecomputeSequence(*m_.engine, *kv, acquired->seq.Id());
    ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    EXPECT_TRUE(SameBits(r->logits, want.back()));
  }
  KvStats st = kv->Stats();
  EXPECT_GT(st.spill_failures, 0u);
  EXPECT_EQ(st.spills, 0u);
  EXPECT_TRUE(ListFiles(dir.Path()).empty());
}

}  // namespace
}  // namespace llmsync::kvcache
