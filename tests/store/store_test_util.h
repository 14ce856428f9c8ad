// Helpers shared by the store tests: opening a store in a test directory and building records, and
// StoreTest, the fixture of the conformance suite: every test written against it runs once on the
// embedded SQLite store and once on the Redis store (a real redis-server shared by the binary,
// emptied before each test; the Redis runs skip with a message when redis-server is missing).
//
// Thread safety: plain functions over values; a fixture per test.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../base/test_dir.h"
#include "base/sha256.h"
#include "redis_server.h"
#include "store/redis/redis_store.h"
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

enum class Backend { kSqlite, kRedis };

inline std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Redis";
}

inline std::unique_ptr<Store> OpenRedisOrDie(const std::string& url) {
  RedisStoreOptions options;
  EXPECT_TRUE(ParseRedisUrl(url, &options).IsOk());
  auto store = OpenRedisStore(options);
  EXPECT_TRUE(store.IsOk()) << store.GetStatus().ToString();
  if (!store.IsOk()) return nullptr;
  return std::move(store).Value();
}

// The conformance fixture: store_ is a fresh, empty store of the backend under test.
class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kRedis) {
      redis_ = llmsync::testing::SharedRedisServer();
      if (redis_ == nullptr) {
        GTEST_SKIP() << "redis-server not found at " << llmsync::testing::kRedisServerBinary
                     << " (or it did not start): the Redis store runs of this test are skipped";
      }
      ASSERT_TRUE(redis_->FlushAll());
    }
    Reopen();
  }
  // Closes the store and opens it again over the same data.
  void Reopen() {
    store_.reset();
    store_ = GetParam() == Backend::kSqlite ? OpenOrDie(dir_.File("db")) : OpenRedisOrDie(redis_->Url());
    ASSERT_NE(store_, nullptr);
  }

  llmsync::testing::TestDir dir_;
  llmsync::testing::RedisServer* redis_ = nullptr;
  std::unique_ptr<Store> store_;
};

// Instantiates a StoreTest-derived fixture for both backends.
#define LLMSYNC_STORE_BACKENDS(fixture)                                                   \
  INSTANTIATE_TEST_SUITE_P(Backends, fixture,                                             \
                           ::testing::Values(::llmsync::store::testing::Backend::kSqlite, \
                                             ::llmsync::store::testing::Backend::kRedis), \
                           ::llmsync::store::testing::BackendName)

}  // namespace llmsync::store::testing
