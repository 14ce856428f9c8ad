// RadixIndex: the prefix index of the KV cache — a radix tree over token ids whose edges are
// KV blocks.
//
// Each node is one cached span: the tokens of one block (block_tokens of them for a full block,
// fewer for the partial last block of a path) under a parent span. Nodes are linked by key, not by
// pointer: a node's key is ChildKey(parent key, tokens) (span_key.h), the root of each
// (tenant, model) namespace is RootKey(...). Walking a request's tokens block by block computes
// the keys of its full blocks, so a full block is found with one hash lookup; a partial or
// diverging block is matched against the parent's children by longest common prefix. Because the
// links are hash-named, disk-only nodes indexed at startup (from snapshot headers) join the same
// tree with no pointers to rebuild.
//
// A node is resident (it owns one reference to a RAM block), on disk (a snapshot file exists), or
// both; a node that is neither is erased. Resident nodes are kept in LRU order (by a use tick).
//
// Invariants: nodes_[k]->key == k; every key in children_[p] names a node whose parent is p;
// lru_ holds exactly the resident nodes, by (last_use, key).
//
// Thread safety: none; KvManager calls it under its mutex. Node pointers stay valid until the
// node is erased.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "kvcache/block_pool.h"
#include "kvcache/span_key.h"

namespace llmsync::kvcache {

struct RadixNode {
  SpanKey key;
  SpanKey parent;
  std::int64_t start = 0;            // position of tokens[0] in the path (a multiple of block_tokens)
  std::vector<std::int32_t> tokens;  // 1..block_tokens tokens
  BlockId block = kNoBlock;          // the resident copy, or kNoBlock
  bool on_disk = false;
  std::uint64_t last_use = 0;

  bool Resident() const { return block != kNoBlock; }
};

struct ChildMatch {
  RadixNode* node = nullptr;
  std::int64_t common = 0;  // tokens shared with the request
};

class RadixIndex {
 public:
  RadixNode* Find(const SpanKey& key);
  const RadixNode* Find(const SpanKey& key) const;

  // The child of `parent` sharing the longest prefix with `tokens`; among equals, a resident one.
  // {nullptr, 0} when `parent` has no children.
  ChildMatch BestChild(const SpanKey& parent, std::span<const std::int32_t> tokens);
  bool HasChildren(const SpanKey& parent) const;
  bool HasResidentChild(const SpanKey& parent) const;
  // Keys of the children of `parent` (a copy: callers may erase while iterating).
  std::vector<SpanKey> Children(const SpanKey& parent) const;

  // REQUIRES: no node has node.key. A resident node enters the LRU order at node.last_use.
  RadixNode& Insert(RadixNode node);
  void Erase(const SpanKey& key);

  // Sets the node's block (kNoBlock: not resident) and keeps the LRU order in step. The caller
  // moves the block reference.
  void SetBlock(RadixNode& node, BlockId block);
  void Touch(RadixNode& node, std::uint64_t tick);

  // Resident nodes, least recently used first.
  const std::set<std::pair<std::uint64_t, SpanKey>>& LruOrder() const { return lru_; }

  std::size_t Size() const { return nodes_.size(); }
  std::size_t ResidentCount() const { return lru_.size(); }

 private:
  std::unordered_map<SpanKey, std::unique_ptr<RadixNode>> nodes_;
  std::unordered_map<SpanKey, std::vector<SpanKey>> children_;
  std::set<std::pair<std::uint64_t, SpanKey>> lru_;
};

}  // namespace llmsync::kvcache
