// Helpers shared by the store tests: opening a store in a test directory and building records.
//
// Thread safety: plain functions over values.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../base/test_dir.h"
#include "base/sha256.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::store::testing {

inline std::unique_ptr<Store> OpenOrDie(const std::string& path, int max_schema_version = 0) {
  SqliteStoreOptions options;
  options.path = path;
  options.max_schema_version = max_schema_version;
  auto store = OpenSqliteStore(options);
  EXPECT_TRUE(store.IsOk()) << store.GetStatus().ToString();
  if (!store.IsOk()) return nullptr;
  return std::move(store).Value();
}

// A distinct, deterministic id for a name (the store never computes ids itself).
inline Id NamedId(const std::string& name) { return Id(Sha256::Hash(name)); }

inline SessionRecord NewSession(const std::string& tenant, const std::string& name) {
  SessionRecord s;
  s.id = NamedId("session:" + name);
  s.tenant = tenant;
  s.model = NamedId("model");
  s.created_at_ms = 1000;
  return s;
}

inline NodeRecord NewNode(const Id& parent, const std::string& text, bool hidden = false) {
  NodeRecord n;
  n.id = NamedId(parent.ToHex() + "/" + text + (hidden ? "/h" : ""));
  n.parent = parent;
  n.kind = 1;
  n.hidden = hidden;
  n.text = text;
  n.tokens = {static_cast<std::int32_t>(text.size()), 7, 42};
  n.created_at_ms = 2000;
  return n;
}

// A batch appending a chain of `texts` under `parent`.
inline AppendBatch Chain(const SessionRecord& s, const Id& parent, std::initializer_list<std::string> texts) {
  AppendBatch b;
  b.tenant = s.tenant;
  b.session = s.id;
  b.parent = parent;
  Id prev = parent;
  for (const std::string& t : texts) {
    b.nodes.push_back(NewNode(prev, t));
    prev = b.nodes.back().id;
  }
  return b;
}

}  // namespace llmsync::store::testing
