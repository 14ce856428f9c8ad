// The store's CLI commands run as the real `llmsync` binary: export, import, bench store.
#include <gtest/gtest.h>

#include <fstream>

#include "../cli/run_cli.h"
#include "session/bundle.h"
#include "session_test_util.h"

namespace llmsync::session {
namespace {

using llmsync::testing::RunLlmsync;
using testing::Assistant;
using testing::Reasoning;
using testing::User;

class StoreCliTest : public testing::SessionFixture {
 protected:
  void SetUp() override {
    SessionFixture::SetUp();
    s_ = NewSession("acme");
    r_ = AppendOrDie(s_, Id(), {User("hello there"), Reasoning("thinking"), Assistant("general kenobi")});
    service_.reset();
    store_.reset();  // the CLI opens the file itself
  }

  std::string Db() const { return dir_.File("llmsync.db"); }

  void WriteFile(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
  }

  // Opens another database file and returns all nodes of one of its sessions.
  std::vector<Node> NodesIn(const std::string& db, const std::string& tenant, const Id& session) {
    store::SqliteStoreOptions options;
    options.path = db;
    auto store = store::OpenSqliteStore(options);
    EXPECT_TRUE(store.IsOk());
    SessionService service(store->get(), Env::Default(), SessionOptions{});
    auto diff = service.DiffSince(tenant, session, 0, 1000);
    EXPECT_TRUE(diff.IsOk()) << diff.GetStatus().ToString();
    return diff.IsOk() ? diff->nodes : std::vector<Node>{};
  }

  static Id ImportedSession(const std::string& out) {
    const std::string marker = "imported session ";
    size_t at = out.find(marker);
    if (at == std::string::npos) return Id();
    auto id = Id::FromHex(out.substr(at + marker.size(), 64));
    return id.IsOk() ? *id : Id();
  }

  SessionInfo s_;
  AppendResult r_;
};

TEST_F(StoreCliTest, ExportThenImportIntoAnotherDatabase) {
  auto exported = RunLlmsync("export --db " + Db() + " --session " + s_.id.ToHex());
  ASSERT_EQ(exported.exit_code, 0) << exported.out;
  EXPECT_NE(exported.out.find("\"type\":\"llmsync.bundle\""), std::string::npos);
  std::string bundle = dir_.File("bundle.jsonl");
  WriteFile(bundle, exported.out);

  std::string other = dir_.File("other.db");
  auto imported = RunLlmsync("import --db " + other + " < " + bundle);
  ASSERT_EQ(imported.exit_code, 0) << imported.out;
  Id id = ImportedSession(imported.out);
  ASSERT_FALSE(id.IsZero()) << imported.out;
  EXPECT_NE(imported.out.find("tenant acme: 3 nodes"), std::string::npos) << imported.out;
  auto nodes = NodesIn(other, "acme", id);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, r_.ids[0]);
  EXPECT_EQ(nodes[2].content.text, "general kenobi");
  EXPECT_EQ(nodes[1].content.text, "thinking");  // the operator's export carries hidden content

  auto renamed = RunLlmsync("import --db " + other + " --tenant globex --input " + bundle);
  ASSERT_EQ(renamed.exit_code, 0) << renamed.out;
  auto moved = NodesIn(other, "globex", ImportedSession(renamed.out));
  ASSERT_EQ(moved.size(), 3u);
  EXPECT_NE(moved[0].id, r_.ids[0]);
}

TEST_F(StoreCliTest, ExportMarkdownPrintsTheTranscript) {
  auto md = RunLlmsync("export --db " + Db() + " --session " + s_.id.ToHex() + " --tenant acme --markdown");
  ASSERT_EQ(md.exit_code, 0) << md.out;
  EXPECT_EQ(md.out.rfind("# llmsync session " + s_.id.ToHex(), 0), 0u) << md.out;
  EXPECT_NE(md.out.find("## assistant\n\ngeneral kenobi"), std::string::npos) << md.out;
  EXPECT_EQ(md.out.find("thinking"), std::string::npos) << md.out;
}

TEST_F(StoreCliTest, ExportErrorsAreClear) {
  auto missing = RunLlmsync("export --db " + dir_.File("nope.db") + " --session " + s_.id.ToHex());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("does not exist"), std::string::npos) << missing.out;
  auto unknown = RunLlmsync("export --db " + Db() + " --session " + Id::Random().ToHex());
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_NE(unknown.out.find("not_found"), std::string::npos) << unknown.out;
  auto wrong_tenant = RunLlmsync("export --db " + Db() + " --session " + s_.id.ToHex() + " --tenant globex");
  EXPECT_EQ(wrong_tenant.exit_code, 1);
  auto bad_id = RunLlmsync("export --db " + Db() + " --session xyz");
  EXPECT_EQ(bad_id.exit_code, 1);
  EXPECT_NE(bad_id.out.find("64 hex characters"), std::string::npos) << bad_id.out;
  EXPECT_NE(RunLlmsync("export --session " + s_.id.ToHex()).exit_code, 0);  // --db is required
}

TEST_F(StoreCliTest, TamperedImportFailsAndImportsNothing) {
  auto exported = RunLlmsync("export --db " + Db() + " --session " + s_.id.ToHex());
  ASSERT_EQ(exported.exit_code, 0);
  std::string text = exported.out;
  text.replace(text.find("general kenobi"), 7, "GENERAL");
  std::string bundle = dir_.File("tampered.jsonl");
  WriteFile(bundle, text);
  std::string other = dir_.File("other.db");
  auto r = RunLlmsync("import --db " + other + " < " + bundle);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("data_loss: bundle line 4: node id"), std::string::npos) << r.out;
  store::SqliteStoreOptions options;
  options.path = other;
  auto store = store::OpenSqliteStore(options);
  ASSERT_TRUE(store.IsOk());
  EXPECT_TRUE((*store)->ListSessions("acme", 10)->empty());
}

TEST_F(StoreCliTest, ImportWithASealKeySealsHiddenNodes) {
  auto exported = RunLlmsync("export --db " + Db() + " --session " + s_.id.ToHex());
  ASSERT_EQ(exported.exit_code, 0);
  std::string bundle = dir_.File("bundle.jsonl");
  WriteFile(bundle, exported.out);
  SealKey key = SealKey::Random();
  WriteFile(dir_.File("seal.key"), key.ToHex() + "\n");
  std::string other = dir_.File("other.db");
  auto r =
      RunLlmsync("import --db " + other + " --seal-key-file " + dir_.File("seal.key") + " --input " + bundle);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  auto nodes = NodesIn(other, "acme", ImportedSession(r.out));
  ASSERT_EQ(nodes.size(), 3u);
  ASSERT_FALSE(nodes[1].sealed.empty());
  EXPECT_TRUE(OpenSealed(key, nodes[1].sealed).IsOk());
  WriteFile(dir_.File("bad.key"), "not a key");
  auto bad =
      RunLlmsync("import --db " + other + " --seal-key-file " + dir_.File("bad.key") + " --input " + bundle);
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.out.find("seal key"), std::string::npos) << bad.out;
}

TEST_F(StoreCliTest, BenchStorePrintsJson) {
  auto r = RunLlmsync("bench store --quick --dir " + dir_.File("bench"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* key : {"\"benchmark\": \"store\"", "\"single_sequential\"", "\"single_concurrent\"",
                          "\"batched\"", "\"async_group_commit\"", "\"blocking_concurrent\"",
                          "\"path_latency_ms\"", "synchronous=FULL", "\"fdatasync_us\""}) {
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " in " << r.out;
  }
  EXPECT_EQ(r.out.back(), '\n');
}

}  // namespace
}  // namespace llmsync::session
