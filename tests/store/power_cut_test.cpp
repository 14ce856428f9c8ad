// Power-cut test: while a writer appends nodes and run events, the test repeatedly builds the disk
// image a power cut would leave behind (through PowerCutVfs: only synced bytes, or synced bytes
// plus a random, partly torn subset of the unsynced writes), opens a store on it, and checks that
// every write acknowledged before the cut is there, intact, with no dangling parent and no gap in
// event ids.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "power_cut_vfs.h"
#include "sqlite_check.h"
#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::TestDir;
using testing::NamedId;
using testing::NewNode;
using testing::NewSession;

struct Acked {
  std::map<Id, std::uint64_t> nodes;  // id -> seq
  std::uint64_t max_event = 0;
};

void VerifyImage(const std::string& path, const SessionRecord& s, const Id& run, const Acked& acked) {
  {
    SqliteStoreOptions options;
    options.path = path;
    options.create_if_missing = false;
    auto opened = OpenSqliteStore(options);
    ASSERT_TRUE(opened.IsOk()) << opened.GetStatus().ToString();
    Store& store = **opened;
    auto changes = store.ChangesSince(s.tenant, s.id, 0, 1000000);
    ASSERT_TRUE(changes.IsOk()) << changes.GetStatus().ToString();
    std::map<Id, const NodeRecord*> by_id;
    for (const NodeRecord& n : changes->nodes) by_id[n.id] = &n;
    for (const NodeRecord& n : changes->nodes) {
      // Intact: the id still derives from parent and text, and the tokens match the text.
      EXPECT_EQ(NewNode(n.parent, n.text).id, n.id) << "torn node " << n.id.ToHex();
      EXPECT_EQ(n.tokens, NewNode(n.parent, n.text).tokens);
      if (!n.parent.IsZero()) {
        EXPECT_TRUE(by_id.count(n.parent)) << "dangling parent";
      }
    }
    for (const auto& [id, seq] : acked.nodes) {
      ASSERT_TRUE(by_id.count(id)) << "acknowledged node lost: " << id.ToHex();
      EXPECT_EQ(by_id[id]->seq, seq);
    }
    if (!changes->session.head.IsZero()) {
      EXPECT_TRUE(by_id.count(changes->session.head));
    }
    auto events = store.ReadRunEvents(s.tenant, run, 0, 10000000);
    ASSERT_TRUE(events.IsOk()) << events.GetStatus().ToString();
    for (std::size_t i = 0; i < events->size(); ++i) ASSERT_EQ((*events)[i].event_id, i + 1);
    EXPECT_GE(events->size(), acked.max_event) << "acknowledged events lost";
  }
  EXPECT_EQ(llmsync::testing::SqliteCheck(path, "PRAGMA integrity_check"), "ok");
}

TEST(PowerCutTest, NoAcknowledgedWriteIsLostWhenThePowerFails) {
  TestDir dir;
  testing::PowerCutVfs vfs;
  const std::string db_path = dir.File("live.db");
  auto store = testing::OpenOrDie(db_path);
  ASSERT_NE(store, nullptr);
  SessionRecord s = NewSession("acme", "power");
  ASSERT_TRUE(store->CreateSession(s).IsOk());
  RunRecord run;
  run.id = NamedId("run");
  run.tenant = "acme";
  run.session = s.id;
  ASSERT_TRUE(store->CreateRun(run).IsOk());

  std::mutex mu;
  Acked acked;  // GUARDED_BY(mu)
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  std::thread writer([&] {
    Id head;
    for (int i = 0; !stop.load(); ++i) {
      AppendBatch b;
      b.tenant = "acme";
      b.session = s.id;
      b.parent = head;
      Id parent = head;
      for (int k = 0; k < 1 + i % 3; ++k) {
        b.nodes.push_back(NewNode(parent, "node " + std::to_string(i) + "." + std::to_string(k) +
                                              std::string(static_cast<std::size_t>(i * 37 % 900), 'x')));
        parent = b.nodes.back().id;
      }
      auto out = store->Append(b, nullptr);
      ASSERT_TRUE(out.IsOk()) << out.GetStatus().ToString();
      head = out->head;
      auto ids = store->AppendRunEvents({{"acme", run.id, "token", std::to_string(i)}});
      ASSERT_TRUE(ids.IsOk());
      std::lock_guard<std::mutex> lock(mu);
      for (std::size_t k = 0; k < out->ids.size(); ++k) acked.nodes[out->ids[k]] = out->seqs[k];
      acked.max_event = std::max(acked.max_event, ids->back());
      writes.fetch_add(1);
    }
  });

  constexpr int kCuts = 12;
  std::mt19937 rng(20261120);
  std::vector<std::pair<std::string, Acked>> images;
  for (int cut = 0; cut < kCuts; ++cut) {
    // Let a few more writes happen, then cut at whatever point the writer has reached.
    int target = writes.load() + 1 + static_cast<int>(rng() % 8);
    while (writes.load() < target) std::this_thread::yield();
    Acked before;
    {
      std::lock_guard<std::mutex> lock(mu);
      before = acked;  // everything acknowledged before the cut
    }
    std::string image_dir = dir.File("cut" + std::to_string(cut));
    std::filesystem::create_directories(image_dir);
    vfs.WriteDurableImage(db_path, image_dir, /*torn=*/cut % 2 == 1, rng);
    images.emplace_back(image_dir + "/live.db", before);
  }
  stop.store(true);
  writer.join();
  store.reset();

  for (const auto& [path, before] : images) {
    SCOPED_TRACE(path);
    VerifyImage(path, s, run.id, before);
  }
}

}  // namespace
}  // namespace llmsync::store
