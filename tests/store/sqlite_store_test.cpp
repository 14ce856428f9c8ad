// Opening, schema versions and migrations, sessions and tenant scoping of the SQLite store.
#include <sqlite3.h>

#include <gtest/gtest.h>

#include "base/env.h"
#include "store/sqlite/sqlite_store.h"
#include "store_test_util.h"

namespace llmsync::store {
namespace {

using llmsync::testing::TestDir;
using testing::NamedId;
using testing::NewSession;
using testing::OpenOrDie;

void RawExec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(SqliteStoreOpenTest, CreatesWalDatabaseAtLatestVersionAndReopens) {
  TestDir dir;
  std::string path = dir.Path() + "/nested/dir/llmsync.db";
  {
    auto store = OpenOrDie(path);
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateSession(NewSession("acme", "a")).IsOk());
  }
  EXPECT_TRUE(Env::Default()->FileExists(path));
  auto store = OpenOrDie(path);
  ASSERT_NE(store, nullptr);
  auto s = store->GetSession("acme", NewSession("acme", "a").id);
  ASSERT_TRUE(s.IsOk()) << s.GetStatus().ToString();
  EXPECT_EQ(s->tenant, "acme");
  EXPECT_EQ(s->model, NamedId("model"));
  EXPECT_EQ(s->created_at_ms, 1000);
  EXPECT_TRUE(s->head.IsZero());

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(stmt, 0), LatestSchemaVersion());
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST(SqliteStoreOpenTest, MissingFileWithoutCreateIsNotFound) {
  TestDir dir;
  SqliteStoreOptions options;
  options.path = dir.File("absent.db");
  options.create_if_missing = false;
  auto store = OpenSqliteStore(options);
  EXPECT_EQ(store.GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_FALSE(Env::Default()->FileExists(options.path));
}

TEST(SqliteStoreOpenTest, RefusesNewerSchema) {
  TestDir dir;
  std::string path = dir.File("db");
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  RawExec(path, "UPDATE schema_version SET version = 99");
  SqliteStoreOptions options;
  options.path = path;
  auto store = OpenSqliteStore(options);
  ASSERT_EQ(store.GetStatus().Code(), StatusCode::kUnimplemented);
  EXPECT_NE(store.GetStatus().Message().find("newer than this llmsync"), std::string::npos)
      << store.GetStatus().ToString();
}

TEST(SqliteStoreOpenTest, RefusesSomeoneElsesDatabase) {
  TestDir dir;
  std::string path = dir.File("other.db");
  RawExec(path, "CREATE TABLE customers (name TEXT)");
  SqliteStoreOptions options;
  options.path = path;
  auto store = OpenSqliteStore(options);
  ASSERT_EQ(store.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_NE(store.GetStatus().Message().find("not an llmsync store"), std::string::npos);
}

TEST(SqliteStoreOpenTest, GarbageFileIsDataLoss) {
  TestDir dir;
  std::string path = dir.File("garbage.db");
  ASSERT_TRUE(WriteFileAtomically(Env::Default(), path, std::string(8192, 'x')).IsOk());
  SqliteStoreOptions options;
  options.path = path;
  auto store = OpenSqliteStore(options);
  EXPECT_EQ(store.GetStatus().Code(), StatusCode::kDataLoss) << store.GetStatus().ToString();
}

TEST(SqliteStoreOpenTest, MigratesAVersionOneDatabaseKeepingItsData) {
  TestDir dir;
  std::string path = dir.File("db");
  SessionRecord s = NewSession("t", "old");
  {
    auto v1 = OpenOrDie(path, /*max_schema_version=*/1);
    ASSERT_NE(v1, nullptr);
    ASSERT_TRUE(v1->CreateSession(s).IsOk());
    ASSERT_TRUE(v1->Append(testing::Chain(s, Id(), {"hello"}), nullptr).IsOk());
    // Version 1 has no runs table yet.
    RunRecord run;
    run.id = NamedId("run");
    run.tenant = "t";
    run.session = s.id;
    EXPECT_FALSE(v1->CreateRun(run).IsOk());
  }
  auto latest = OpenOrDie(path);
  ASSERT_NE(latest, nullptr);
  auto changes = latest->ChangesSince("t", s.id, 0, 10);
  ASSERT_TRUE(changes.IsOk());
  ASSERT_EQ(changes->nodes.size(), 1u);
  EXPECT_EQ(changes->nodes[0].text, "hello");
  RunRecord run;
  run.id = NamedId("run");
  run.tenant = "t";
  run.session = s.id;
  EXPECT_TRUE(latest->CreateRun(run).IsOk());
  // Version 4 added session metadata: empty for the old session, and settable.
  EXPECT_EQ(latest->GetSession("t", s.id)->metadata, "");
  EXPECT_TRUE(latest->SetSessionMetadata("t", s.id, R"({"title":"migrated"})").IsOk());
}

// Sessions and tenant scoping: part of the conformance suite (SQLite and Redis).
class SessionStoreTest : public testing::StoreTest {};

TEST_P(SessionStoreTest, SessionsAreTenantScoped) {
  Store* store = store_.get();
  SessionRecord a = NewSession("acme", "a");
  ASSERT_TRUE(store->CreateSession(a).IsOk());
  EXPECT_EQ(store->CreateSession(a).Code(), StatusCode::kAlreadyExists);
  SessionRecord stolen = a;
  stolen.tenant = "evil";
  EXPECT_EQ(store->CreateSession(stolen).Code(), StatusCode::kAlreadyExists);

  auto other = store->GetSession("evil", a.id);
  auto missing = store->GetSession("evil", NamedId("nothing"));
  ASSERT_EQ(other.GetStatus().Code(), StatusCode::kNotFound);
  ASSERT_EQ(missing.GetStatus().Code(), StatusCode::kNotFound);
  // The same wording for "another tenant's" and "absent": existence does not leak.
  EXPECT_EQ(other.GetStatus().Message().find("not found"), missing.GetStatus().Message().find("not found"));
  EXPECT_EQ(store->DeleteSession("evil", a.id).Code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->GetSession("acme", a.id).IsOk());
  auto admin = store->AdminFindSession(a.id);
  ASSERT_TRUE(admin.IsOk());
  EXPECT_EQ(admin->tenant, "acme");
}

TEST_P(SessionStoreTest, ListSessionsNewestFirstPerTenant) {
  Store* store = store_.get();
  for (int i = 0; i < 3; ++i) {
    SessionRecord s = NewSession("acme", "s" + std::to_string(i));
    s.created_at_ms = 100 + i;
    ASSERT_TRUE(store->CreateSession(s).IsOk());
  }
  ASSERT_TRUE(store->CreateSession(NewSession("other", "x")).IsOk());
  auto list = store->ListSessions("acme", 10);
  ASSERT_TRUE(list.IsOk());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id, NewSession("acme", "s2").id);
  EXPECT_EQ((*list)[2].id, NewSession("acme", "s0").id);
  EXPECT_EQ(store->ListSessions("acme", 2)->size(), 2u);
  EXPECT_TRUE(store->ListSessions("nobody", 10)->empty());
}

TEST_P(SessionStoreTest, DeleteSessionRemovesEverythingBelowIt) {
  Store* store = store_.get();
  SessionRecord s = NewSession("t", "doomed");
  ASSERT_TRUE(store->CreateSession(s).IsOk());
  auto out = store->Append(testing::Chain(s, Id(), {"a", "b"}), nullptr);
  ASSERT_TRUE(out.IsOk());
  RunRecord run;
  run.id = NamedId("run");
  run.tenant = "t";
  run.session = s.id;
  ASSERT_TRUE(store->CreateRun(run).IsOk());
  ASSERT_TRUE(store->AppendRunEvents({{"t", run.id, "token", "x"}}).IsOk());
  ASSERT_TRUE(store->DeleteSession("t", s.id).IsOk());
  EXPECT_EQ(store->GetSession("t", s.id).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetRun("t", run.id).GetStatus().Code(), StatusCode::kNotFound);
  // The id is free again, and the new session starts empty.
  ASSERT_TRUE(store->CreateSession(s).IsOk());
  EXPECT_TRUE(store->ChangesSince("t", s.id, 0, 10)->nodes.empty());
}

TEST_P(SessionStoreTest, MetadataIsReplacedBoundedAndTenantScoped) {
  Store* store = store_.get();
  SessionRecord s = NewSession("acme", "titled");
  ASSERT_TRUE(store->CreateSession(s).IsOk());
  ASSERT_TRUE(store->Append(testing::Chain(s, Id(), {"hi"}), nullptr).IsOk());
  EXPECT_EQ(store->GetSession("acme", s.id)->metadata, "");  // never set

  auto set = store->SetSessionMetadata("acme", s.id, R"({"title":"First"})");
  ASSERT_TRUE(set.IsOk()) << set.GetStatus().ToString();
  EXPECT_EQ(set->metadata, R"({"title":"First"})");
  EXPECT_EQ(set->last_seq, 1u);  // metadata is not part of the node log
  ASSERT_TRUE(store->SetSessionMetadata("acme", s.id, R"({"title":"Second"})").IsOk());
  EXPECT_EQ(store->GetSession("acme", s.id)->metadata, R"({"title":"Second"})");
  EXPECT_EQ(store->ListSessions("acme", 10)->at(0).metadata, R"({"title":"Second"})");
  EXPECT_EQ(store->ChangesSince("acme", s.id, 0, 10)->session.metadata, R"({"title":"Second"})");
  EXPECT_EQ(store->AdminFindSession(s.id)->metadata, R"({"title":"Second"})");

  // Another tenant's session is absent; oversized metadata is refused and changes nothing.
  EXPECT_EQ(store->SetSessionMetadata("evil", s.id, "{}").GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(store->SetSessionMetadata("acme", NamedId("none"), "{}").GetStatus().Code(),
            StatusCode::kNotFound);
  std::string big(kMaxSessionMetadataBytes + 1, 'x');
  EXPECT_EQ(store->SetSessionMetadata("acme", s.id, big).GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->SetSessionMetadata("acme", s.id, std::string(kMaxSessionMetadataBytes, 'y')).IsOk());
  ASSERT_TRUE(store->SetSessionMetadata("acme", s.id, R"({"title":"Kept"})").IsOk());
  Reopen();
  EXPECT_EQ(store_->GetSession("acme", s.id)->metadata, R"({"title":"Kept"})");
}

LLMSYNC_STORE_BACKENDS(SessionStoreTest);

}  // namespace
}  // namespace llmsync::store
