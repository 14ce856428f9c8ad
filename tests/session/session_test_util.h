// A session test fixture: a fresh SQLite store in a test directory, a manual clock, and a
// SessionService over them; plus draft builders.
//
// Thread safety: one fixture per test; the service it holds is itself thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../base/test_dir.h"
#include "base/fault_injection_env.h"
#include "base/sha256.h"
#include "session/session_service.h"
#include "store/sqlite/sqlite_store.h"

namespace llmsync::session::testing {

inline NodeDraft Draft(NodeKind kind, const std::string& text, Visibility visibility = Visibility::kPublic) {
  NodeDraft d;
  d.kind = kind;
  d.visibility = visibility;
  d.text = text;
  // A stand-in tokenizer: one token per byte. The session layer never tokenizes by itself.
  for (unsigned char c : text) d.tokens.push_back(c);
  return d;
}

inline NodeDraft User(const std::string& text) { return Draft(NodeKind::kUser, text); }
inline NodeDraft Assistant(const std::string& text) { return Draft(NodeKind::kAssistant, text); }
inline NodeDraft Reasoning(const std::string& text) {
  return Draft(NodeKind::kReasoning, text, Visibility::kHidden);
}

inline Id TestModel() { return Id(Sha256::Hash(std::string_view("test-model"))); }

class SessionFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.UseManualClock(1'000'000, 1'700'000'000'000);
    Reopen();
  }

  // Closes and reopens the store (and rebuilds the service) over the same file.
  void Reopen() {
    service_.reset();
    store_.reset();
    store::SqliteStoreOptions options;
    options.path = dir_.File("llmsync.db");
    options.env = &env_;
    auto store = store::OpenSqliteStore(options);
    ASSERT_TRUE(store.IsOk()) << store.GetStatus().ToString();
    store_ = std::move(store).Value();
    service_ = std::make_unique<SessionService>(store_.get(), &env_, Options());
  }

  virtual SessionOptions Options() {
    SessionOptions o;
    o.seal_key = SealKey::FromSecretForTesting("test seal key");
    return o;
  }

  SessionInfo NewSession(const std::string& tenant = "acme") {
    auto s = service_->CreateSession(tenant, TestModel());
    EXPECT_TRUE(s.IsOk()) << s.GetStatus().ToString();
    return s.IsOk() ? *s : SessionInfo{};
  }

  AppendRequest Request(const SessionInfo& s, const Id& parent, std::vector<NodeDraft> nodes) {
    AppendRequest r;
    r.tenant = s.tenant;
    r.session = s.id;
    r.parent = parent;
    r.nodes = std::move(nodes);
    return r;
  }

  AppendResult AppendOrDie(const SessionInfo& s, const Id& parent, std::vector<NodeDraft> nodes) {
    auto r = service_->Append(Request(s, parent, std::move(nodes)));
    EXPECT_TRUE(r.IsOk()) << r.GetStatus().ToString();
    return r.IsOk() ? *r : AppendResult{};
  }

  llmsync::testing::TestDir dir_;
  FaultInjectionEnv env_{Env::Default()};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<SessionService> service_;
};

}  // namespace llmsync::session::testing
