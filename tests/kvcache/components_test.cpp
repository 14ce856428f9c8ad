// Unit tests of the KV cache's parts: block pool, span keys, radix index, lease table, snapshot
// codec.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <numeric>

#include "kvcache/block_pool.h"
#include "kvcache/lease_table.h"
#include "kvcache/radix_index.h"
#include "kvcache/snapshot_codec.h"
#include "kvcache/span_key.h"

namespace llmsync::kvcache {
namespace {

using Tokens = std::vector<std::int32_t>;

BlockLayout SmallLayout(engine::KvDtype dtype = engine::KvDtype::kF16) {
  return BlockLayout{engine::KvGeometry{2, 2, 8, dtype}, 4};
}

Id ModelId(std::uint8_t b) {
  Id::Bytes bytes{};
  bytes.fill(b);
  return Id(bytes);
}

TEST(BlockPool, RefCountsCapacityAndReuse) {
  BlockPool pool(SmallLayout(), 2);
  EXPECT_EQ(pool.Layout().BlockBytes(), 4u * 4 * 2 * 8 * 2);
  auto a = pool.Allocate();
  auto b = pool.Allocate();
  ASSERT_TRUE(a.IsOk() && b.IsOk());
  EXPECT_NE(*a, *b);
  auto c = pool.Allocate();
  EXPECT_EQ(c.GetStatus().Code(), StatusCode::kResourceExhausted);
  pool.Ref(*a);
  EXPECT_EQ(pool.RefCount(*a), 2);
  pool.Unref(*a);
  EXPECT_EQ(pool.Used(), 2);
  pool.Unref(*a);
  EXPECT_EQ(pool.Used(), 1);
  auto d = pool.Allocate();
  ASSERT_TRUE(d.IsOk());
  EXPECT_EQ(*d, *a) << "freed blocks are reused";
}

TEST(BlockPool, CopyRowsCopiesThePrefixOfEveryPlane) {
  BlockPool pool(SmallLayout(), 2);
  BlockId src = *pool.Allocate();
  BlockId dst = *pool.Allocate();
  const BlockLayout& l = pool.Layout();
  std::memset(pool.Data(dst), 0xEE, l.BlockBytes());
  for (std::size_t i = 0; i < l.BlockBytes(); ++i) pool.Data(src)[i] = static_cast<std::uint8_t>(i);
  pool.CopyRows(src, dst, 3);
  for (std::int64_t plane = 0; plane < l.Planes(); ++plane) {
    for (std::int64_t pos = 0; pos < 4; ++pos) {
      const std::uint8_t* got = pool.Data(dst) + l.RowOffset(plane, pos);
      if (pos < 3) {
        EXPECT_EQ(std::memcmp(got, pool.Data(src) + l.RowOffset(plane, pos), l.RowBytes()), 0);
      } else {
        EXPECT_EQ(got[0], 0xEE) << "rows at and after n are untouched";
      }
    }
  }
}

TEST(SpanKey, NamesTheWholePrefixPerTenantAndModel) {
  const Id model = ModelId(1);
  SpanKey root_a = RootKey("a", model, 16, engine::KvDtype::kF16);
  EXPECT_NE(root_a, RootKey("b", model, 16, engine::KvDtype::kF16));
  EXPECT_NE(root_a, RootKey("a", ModelId(2), 16, engine::KvDtype::kF16));
  EXPECT_NE(root_a, RootKey("a", model, 32, engine::KvDtype::kF16));
  EXPECT_NE(root_a, RootKey("a", model, 16, engine::KvDtype::kF32));
  Tokens t = {1, 2, 3};
  EXPECT_EQ(ChildKey(root_a, t), ChildKey(root_a, t));
  EXPECT_NE(ChildKey(root_a, t), ChildKey(root_a, Tokens{1, 2}));
  EXPECT_NE(ChildKey(ChildKey(root_a, t), t), ChildKey(root_a, t));
  EXPECT_EQ(CommonPrefix(Tokens{1, 2, 3}, Tokens{1, 2, 4, 5}), 2);
  EXPECT_EQ(CommonPrefix(Tokens{}, Tokens{1}), 0);
}

RadixNode Node(const SpanKey& parent, Tokens tokens, BlockId block, std::uint64_t tick) {
  RadixNode n;
  n.parent = parent;
  n.key = ChildKey(parent, tokens);
  n.tokens = std::move(tokens);
  n.block = block;
  n.last_use = tick;
  return n;
}

TEST(RadixIndex, FindBestChildAndLruOrder) {
  RadixIndex index;
  const SpanKey root = RootKey("t", ModelId(1), 4, engine::KvDtype::kF16);
  RadixNode& full = index.Insert(Node(root, {1, 2, 3, 4}, 0, 5));
  RadixNode& partial = index.Insert(Node(root, {1, 2, 9}, kNoBlock, 1));
  partial.on_disk = true;
  index.Insert(Node(full.key, {7}, 1, 3));
  EXPECT_EQ(index.Size(), 3u);
  EXPECT_EQ(index.ResidentCount(), 2u);
  EXPECT_EQ(index.Find(full.key), &full);

  ChildMatch m = index.BestChild(root, Tokens{1, 2, 3, 8});
  EXPECT_EQ(m.node, &full);
  EXPECT_EQ(m.common, 3);
  m = index.BestChild(root, Tokens{1, 2, 9, 9});
  EXPECT_EQ(m.node, &partial);
  EXPECT_EQ(m.common, 3);
  m = index.BestChild(root, Tokens{1, 2});  // a tie: the resident one wins
  EXPECT_EQ(m.node, &full);
  EXPECT_EQ(index.BestChild(ChildKey(root, Tokens{5}), Tokens{1}).node, nullptr);

  EXPECT_TRUE(index.HasResidentChild(root));
  EXPECT_TRUE(index.HasResidentChild(full.key));
  ASSERT_EQ(index.LruOrder().size(), 2u);
  EXPECT_EQ(index.LruOrder().begin()->second, ChildKey(full.key, Tokens{7}));  // tick 3 < 5
  index.Touch(*index.Find(ChildKey(full.key, Tokens{7})), 9);
  EXPECT_EQ(index.LruOrder().begin()->second, full.key);
  index.SetBlock(full, kNoBlock);
  EXPECT_EQ(index.ResidentCount(), 1u);
  index.Erase(partial.key);
  EXPECT_EQ(index.Children(root).size(), 1u);
  EXPECT_FALSE(index.HasChildren(ChildKey(root, Tokens{42})));
}

TEST(LeaseTable, QuotasReplacementAndPins) {
  const SpanKey root = RootKey("t", ModelId(1), 4, engine::KvDtype::kF16);
  LeaseTable leases(4, /*default_tenant_quota_blocks=*/3, /*total_limit_blocks=*/5);
  Tokens path = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};  // 3 blocks
  auto a = leases.Add("alice", Id(), root, path, 100);
  ASSERT_TRUE(a.IsOk());
  EXPECT_EQ(a->blocks, 3);
  auto over = leases.Add("alice", Id(), root, Tokens{1}, 100);
  EXPECT_EQ(over.GetStatus().Code(), StatusCode::kResourceExhausted);
  EXPECT_NE(over.GetStatus().Message().find("quota"), std::string::npos);
  auto global = leases.Add("bob", Id(), root, path, 100);
  EXPECT_EQ(global.GetStatus().Code(), StatusCode::kResourceExhausted) << "3 + 3 > 5 blocks in total";
  leases.SetTenantQuota("bob", 10);
  EXPECT_TRUE(leases.Add("bob", Id(), root, Tokens{1, 2}, 100).IsOk());

  // Pins: the full blocks along the path and the nodes around its partial tail.
  SpanKey b0 = ChildKey(root, Tokens{1, 2, 3, 4});
  SpanKey b1 = ChildKey(b0, Tokens{5, 6, 7, 8});
  EXPECT_TRUE(leases.Pins(root, Tokens{1, 2, 3, 4}));
  EXPECT_TRUE(leases.Pins(b0, Tokens{5, 6, 7, 8}));
  EXPECT_TRUE(leases.Pins(b1, Tokens{9, 10}));
  EXPECT_TRUE(leases.Pins(b1, Tokens{9, 10, 11, 12})) << "a node extending the tail holds its rows";
  EXPECT_TRUE(leases.Pins(b1, Tokens{9})) << "a shorter partial node holds a prefix of them";
  EXPECT_FALSE(leases.Pins(b1, Tokens{9, 11}));
  EXPECT_FALSE(leases.Pins(b0, Tokens{5, 6, 7, 9}));

  // Renewing by key replaces without double charging; other tenants cannot touch the lease.
  Id key = ModelId(7);
  ASSERT_TRUE(leases.Remove("alice", a->id).IsOk());
  auto k1 = leases.Add("alice", key, root, path, 100);
  ASSERT_TRUE(k1.IsOk());
  auto k2 = leases.Add("alice", key, root, path, 200);
  ASSERT_TRUE(k2.IsOk()) << k2.GetStatus().ToString();
  EXPECT_TRUE(k2->replaced);
  EXPECT_EQ(leases.TenantBlocks("alice"), 3);
  EXPECT_EQ(leases.Remove("bob", k2->id).Code(), StatusCode::kNotFound);
  EXPECT_EQ(leases.Renew("bob", k2->id, 300).Code(), StatusCode::kNotFound);

  EXPECT_EQ(leases.Expire(150), 1) << "bob's lease (expiring at 100) ends";
  EXPECT_EQ(leases.Count(), 1u);
  EXPECT_EQ(leases.Expire(200), 1);
  EXPECT_EQ(leases.Count(), 0u);
  EXPECT_EQ(leases.TotalBlocks(), 0);
  EXPECT_FALSE(leases.Pins(root, Tokens{1, 2, 3, 4}));
}

class SnapshotCodecTest : public ::testing::TestWithParam<engine::KvDtype> {
 protected:
  SnapshotCodecTest() : layout_(SmallLayout(GetParam())), block_(layout_.BlockBytes()) {
    std::iota(block_.begin(), block_.end(), 0);
    header_.geometry = layout_.geometry;
    header_.block_tokens = layout_.block_tokens;
    header_.start = 8;
    header_.written_unix_ms = 1234;
    header_.model = ModelId(3);
    header_.parent = ChildKey(RootKey("t", header_.model, 4, GetParam()), Tokens{1, 1, 1, 1});
    header_.tokens = {5, 6, 7};
    header_.key = ChildKey(header_.parent, header_.tokens);
  }
  std::span<const std::uint8_t> Bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
  }

  BlockLayout layout_;
  std::vector<std::uint8_t> block_;
  SnapshotHeader header_;
};

TEST_P(SnapshotCodecTest, RoundTripsTheValidRows) {
  std::string file = EncodeSnapshot(header_, layout_, block_.data());
  EXPECT_EQ(file.size(), SnapshotBytes(layout_, 3));
  auto header = DecodeSnapshotHeader(Bytes(file));
  ASSERT_TRUE(header.IsOk());
  EXPECT_EQ(header->tokens, header_.tokens);
  EXPECT_EQ(header->written_unix_ms, 1234u);
  EXPECT_EQ(header->key, header_.key);
  std::vector<std::uint8_t> out(layout_.BlockBytes(), 0);
  ASSERT_TRUE(DecodeSnapshot(Bytes(file), header_, layout_, out.data()).IsOk());
  for (std::int64_t plane = 0; plane < layout_.Planes(); ++plane) {
    std::size_t at = layout_.RowOffset(plane, 0);
    EXPECT_EQ(std::memcmp(out.data() + at, block_.data() + at, 3 * layout_.RowBytes()), 0);
  }
}

TEST_P(SnapshotCodecTest, EveryTruncationAndEveryByteFlipIsRejected) {
  const std::string file = EncodeSnapshot(header_, layout_, block_.data());
  std::vector<std::uint8_t> out(layout_.BlockBytes(), 0xCD);
  const std::vector<std::uint8_t> untouched = out;
  for (std::size_t n = 0; n < file.size(); ++n) {
    EXPECT_FALSE(DecodeSnapshot(Bytes(file.substr(0, n)), header_, layout_, out.data()).IsOk()) << n;
  }
  for (std::size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(DecodeSnapshot(Bytes(bad), header_, layout_, out.data()).IsOk()) << "flip at " << i;
  }
  EXPECT_EQ(out, untouched) << "a rejected file writes nothing";
}

TEST_P(SnapshotCodecTest, MismatchedExpectationsAreRejected) {
  const std::string file = EncodeSnapshot(header_, layout_, block_.data());
  std::vector<std::uint8_t> out(layout_.BlockBytes());
  SnapshotHeader want = header_;
  want.model = ModelId(4);
  EXPECT_FALSE(DecodeSnapshot(Bytes(file), want, layout_, out.data()).IsOk());
  want = header_;
  want.start = 12;
  EXPECT_FALSE(DecodeSnapshot(Bytes(file), want, layout_, out.data()).IsOk());
  want = header_;
  want.tokens = {5, 6, 8};
  EXPECT_FALSE(DecodeSnapshot(Bytes(file), want, layout_, out.data()).IsOk());
  BlockLayout other = layout_;
  other.block_tokens = 8;
  EXPECT_FALSE(DecodeSnapshot(Bytes(file), header_, other, out.data()).IsOk());
  EXPECT_FALSE(DecodeSnapshotHeader(Bytes("LLMSKVS1")).IsOk());
  EXPECT_FALSE(DecodeSnapshotHeader(Bytes(std::string(200, 'x'))).IsOk());
}

// The fuzz seed was written by an independent Python implementation of the documented format
// (snapshot_codec.h, span_key.h); the C++ codec must accept it and agree on every key.
TEST(SnapshotCodec, AcceptsAFileWrittenFromTheDocumentedFormat) {
  std::ifstream in(std::string(LLMSYNC_SOURCE_DIR) + "/tests/kvcache/fuzz_corpus/snapshot/valid_f16.kvs",
                   std::ios::binary);
  const std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(file.data()), file.size());
  auto header = DecodeSnapshotHeader(bytes);
  ASSERT_TRUE(header.IsOk()) << header.GetStatus().ToString();
  const SpanKey parent = ChildKey(RootKey("t", ModelId(3), 4, engine::KvDtype::kF16), Tokens{1, 1, 1, 1});
  EXPECT_EQ(header->parent, parent);
  EXPECT_EQ(header->key, ChildKey(parent, Tokens{5, 6, 7}));
  EXPECT_EQ(header->start, 4);
  const BlockLayout layout{engine::KvGeometry{1, 1, 4, engine::KvDtype::kF16}, 4};
  std::vector<std::uint8_t> block(layout.BlockBytes());
  ASSERT_TRUE(DecodeSnapshot(bytes, *header, layout, block.data()).IsOk());
  // Payload byte i is i * 7 mod 256; plane 1, position 2, byte 7 is payload byte 1 * 3 * 8 + 2 * 8 + 7.
  EXPECT_EQ(block[layout.RowOffset(1, 2) + 7], (1 * 3 * 8 + 2 * 8 + 7) * 7 % 256);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, SnapshotCodecTest,
                         ::testing::Values(engine::KvDtype::kF16, engine::KvDtype::kF32),
                         [](const auto& info) { return std::string(engine::KvDtypeName(info.param)); });

}  // namespace
}  // namespace llmsync::kvcache
