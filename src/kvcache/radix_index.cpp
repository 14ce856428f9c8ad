#include "kvcache/radix_index.h"

#include <algorithm>

namespace llmsync::kvcache {

RadixNode* RadixIndex::Find(const SpanKey& key) {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : it->second.get();
}

const RadixNode* RadixIndex::Find(const SpanKey& key) const {
  auto it = nodes_.find(key);
  return it == nodes_.end() ? nullptr : it->second.get();
}

ChildMatch RadixIndex::BestChild(const SpanKey& parent, std::span<const std::int32_t> tokens) {
  ChildMatch best;
  auto it = children_.find(parent);
  if (it == children_.end()) return best;
  for (const SpanKey& key : it->second) {
    RadixNode* child = Find(key);
    std::int64_t common = CommonPrefix(child->tokens, tokens);
    bool better = best.node == nullptr || common > best.common ||
                  (common == best.common && child->Resident() && !best.node->Resident());
    if (better) best = ChildMatch{child, common};
  }
  return best;
}

bool RadixIndex::HasChildren(const SpanKey& parent) const {
  auto it = children_.find(parent);
  return it != children_.end() && !it->second.empty();
}

bool RadixIndex::HasResidentChild(const SpanKey& parent) const {
  auto it = children_.find(parent);
  if (it == children_.end()) return false;
  return std::any_of(it->second.begin(), it->second.end(),
                     [&](const SpanKey& key) { return Find(key)->Resident(); });
}

std::vector<SpanKey> RadixIndex::Children(const SpanKey& parent) const {
  auto it = children_.find(parent);
  return it == children_.end() ? std::vector<SpanKey>{} : it->second;
}

RadixNode& RadixIndex::Insert(RadixNode node) {
  auto owned = std::make_unique<RadixNode>(std::move(node));
  RadixNode& n = *owned;
  children_[n.parent].push_back(n.key);
  if (n.Resident()) lru_.emplace(n.last_use, n.key);
  nodes_.emplace(n.key, std::move(owned));
  return n;
}

void RadixIndex::Erase(const SpanKey& key) {
  auto it = nodes_.find(key);
  if (it == nodes_.end()) return;
  RadixNode& n = *it->second;
  if (n.Resident()) lru_.erase({n.last_use, n.key});
  auto siblings = children_.find(n.parent);
  if (siblings != children_.end()) {
    std::erase(siblings->second, key);
    if (siblings->second.empty()) children_.erase(siblings);
  }
  nodes_.erase(it);
}

void RadixIndex::SetBlock(RadixNode& node, BlockId block) {
  if (node.Resident()) lru_.erase({node.last_use, node.key});
  node.block = block;
  if (node.Resident()) lru_.emplace(node.last_use, node.key);
}

void RadixIndex::Touch(RadixNode& node, std::uint64_t tick) {
  if (node.Resident()) lru_.erase({node.last_use, node.key});
  node.last_use = tick;
  if (node.Resident()) lru_.emplace(node.last_use, node.key);
}

}  // namespace llmsync::kvcache
