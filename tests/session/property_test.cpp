// Property test: random sequences of session operations (append, branch, compare-and-swap,
// idempotent retry, set_head, purge, rehydrate, export/import, reopen) run against the real
// service and a tiny in-test reference model; after every step, and after reopening the
// database, the two must agree on every session's head, seqs, nodes, paths and branch tips.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "session/bundle.h"
#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::Draft;
using testing::SessionFixture;

struct RefNode {
  Id id;
  Id parent;
  NodeContent content;
  std::uint64_t seq = 0;
  std::int64_t created_at_ms = 0;
  bool purged = false;
  std::string blob;  // the sealed blob handed out when the node was created
};

struct RefAppend {
  Id parent;
  std::optional<Id> expect_head;
  bool move_head = true;
  std::vector<NodeDraft> nodes;
  bool operator==(const RefAppend&) const = default;
};

struct RefOutcome {
  std::vector<Id> ids;
  std::vector<std::uint64_t> seqs;
  Id head;
  std::uint64_t head_seq = 0;
};

struct RefSession {
  SessionInfo info;
  std::map<Id, RefNode> nodes;
  std::map<std::string, std::pair<RefAppend, RefOutcome>> keys;
};

class PropertyTest : public SessionFixture, public ::testing::WithParamInterface<int> {
 protected:
  // ---- the reference model

  // Applies an append to the model; returns the status code the service must produce.
  StatusCode ModelAppend(RefSession& s, const RefAppend& a, const std::string& key, RefOutcome* out,
                         Id* head) {
    *head = s.info.head;
    if (!key.empty()) {
      auto it = s.keys.find(key);
      if (it != s.keys.end()) {
        if (!(it->second.first == a)) return StatusCode::kConflict;
        *out = it->second.second;
        return StatusCode::kOk;
      }
    }
    if (a.expect_head && *a.expect_head != s.info.head) return StatusCode::kConflict;
    if (!a.parent.IsZero() && !s.nodes.count(a.parent)) return StatusCode::kNotFound;
    Id parent = a.parent;
    bool last_created = false;
    for (const NodeDraft& d : a.nodes) {
      Id id = NodeIdFor(s.info.tenant, parent, d);
      auto it = s.nodes.find(id);
      if (it == s.nodes.end()) {
        RefNode n{id, parent, d, ++s.info.last_seq, env_.UnixMillis(), false, {}};
        it = s.nodes.emplace(id, n).first;
        last_created = true;
      } else {
        last_created = false;
      }
      out->ids.push_back(id);
      out->seqs.push_back(it->second.seq);
      parent = id;
    }
    if (a.move_head && s.info.head != parent) {
      s.info.head = parent;
      s.info.head_seq = last_created ? s.info.last_seq : ++s.info.last_seq;
    }
    out->head = s.info.head;
    out->head_seq = s.info.head_seq;
    if (!key.empty()) s.keys[key] = {a, *out};
    return StatusCode::kOk;
  }

  std::vector<Id> ModelPath(const RefSession& s, Id node) {
    std::vector<Id> path;
    while (!node.IsZero()) {
      path.insert(path.begin(), node);
      node = s.nodes.at(node).parent;
    }
    return path;
  }

  // ---- the random operations

  Id RandomNode(const RefSession& s) {
    if (s.nodes.empty()) return Id();
    auto it = s.nodes.begin();
    std::advance(it, Pick(s.nodes.size()));
    return it->first;
  }

  std::size_t Pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }
  bool Chance(int percent) { return static_cast<int>(Pick(100)) < percent; }

  NodeDraft RandomDraft() {
    static const char* kTexts[] = {"a", "b", "hello", "why?"};
    std::string text = kTexts[Pick(4)];
    switch (Pick(3)) {
      case 0: return Draft(NodeKind::kUser, text);
      case 1: return Draft(NodeKind::kAssistant, text);
      default: return Draft(NodeKind::kReasoning, text, Visibility::kHidden);
    }
  }

  void StepAppend(RefSession& s) {
    RefAppend a;
    std::string key;
    if (!s.keys.empty() && Chance(15)) {
      auto it = s.keys.begin();
      std::advance(it, Pick(s.keys.size()));
      key = it->first;
      a = it->second.first;
      if (Chance(30)) a.nodes.push_back(RandomDraft());  // same key, different request
    } else {
      int where = static_cast<int>(Pick(100));
      a.parent = where < 10 ? Id() : where < 60 ? s.info.head : where < 95 ? RandomNode(s) : Id::Random();
      for (std::size_t i = 0, n = 1 + Pick(3); i < n; ++i) a.nodes.push_back(RandomDraft());
      int cas = static_cast<int>(Pick(100));
      if (cas < 30) a.expect_head = s.info.head;
      if (cas >= 30 && cas < 45) a.expect_head = RandomNode(s);
      a.move_head = !Chance(10);
      if (Chance(30)) key = "key-" + std::to_string(next_key_++);
    }
    AppendRequest req;
    req.tenant = s.info.tenant;
    req.session = s.info.id;
    req.parent = a.parent;
    req.nodes = a.nodes;
    req.expect_head = a.expect_head;
    req.idempotency_key = key;
    req.move_head = a.move_head;

    RefOutcome expected;
    Id model_head;
    StatusCode code = ModelAppend(s, a, key, &expected, &model_head);
    Id conflict_head;
    auto got = service_->Append(req, &conflict_head);
    ASSERT_EQ(got.GetStatus().Code(), code) << got.GetStatus().ToString();
    ++counts_[code == StatusCode::kOk ? (got->replayed ? "replayed" : "appended")
                                      : std::string(StatusCodeName(code))];
    if (code == StatusCode::kConflict && a.expect_head) {
      EXPECT_EQ(conflict_head, model_head);
    }
    if (code != StatusCode::kOk) return;
    EXPECT_EQ(got->ids, expected.ids);
    EXPECT_EQ(got->seqs, expected.seqs);
    EXPECT_EQ(got->head, expected.head);
    EXPECT_EQ(got->head_seq, expected.head_seq);
    for (std::size_t i = 0; i < got->ids.size(); ++i) {
      RefNode& n = s.nodes.at(got->ids[i]);
      if (n.content.visibility == Visibility::kHidden && n.blob.empty() && !n.purged) n.blob = got->sealed[i];
    }
  }

  void StepSetHead(RefSession& s) {
    Id target = Chance(10) ? Id() : RandomNode(s);
    std::optional<Id> expect;
    if (Chance(30)) expect = Chance(70) ? s.info.head : RandomNode(s);
    Id conflict;
    auto got = service_->SetHead(s.info.tenant, s.info.id, target, expect, &conflict);
    if (expect && *expect != s.info.head) {
      ASSERT_EQ(got.GetStatus().Code(), StatusCode::kConflict);
      EXPECT_EQ(conflict, s.info.head);
      return;
    }
    ASSERT_TRUE(got.IsOk()) << got.GetStatus().ToString();
    if (s.info.head != target) {
      s.info.head = target;
      s.info.head_seq = ++s.info.last_seq;
    }
  }

  void StepPurge() {
    env_.AdvanceMicros(static_cast<std::int64_t>(Pick(5000)) * 1000);
    std::int64_t older_than = static_cast<std::int64_t>(Pick(4000));
    std::int64_t cutoff = env_.UnixMillis() - older_than;
    std::uint64_t expected = 0;
    for (auto& s : sessions_) {
      for (auto& [id, n] : s.nodes) {
        if (n.content.visibility == Visibility::kHidden && !n.purged && n.created_at_ms < cutoff) {
          n.purged = true;
          ++expected;
        }
      }
    }
    auto got = service_->PurgeHidden(older_than, std::nullopt);
    ASSERT_TRUE(got.IsOk());
    EXPECT_EQ(*got, expected);
    counts_["purged"] += expected;
  }

  void StepRehydrate(RefSession& s) {
    std::vector<RefNode*> purged;
    for (auto& [id, n] : s.nodes) {
      if (n.purged) purged.push_back(&n);
    }
    if (purged.empty()) return;
    RefNode* n = purged[Pick(purged.size())];
    auto got = service_->Rehydrate(s.info.tenant, s.info.id, n->id, n->blob);
    ASSERT_TRUE(got.IsOk()) << got.GetStatus().ToString();
    EXPECT_EQ(got->content, n->content);
    n->purged = false;
    ++counts_["rehydrated"];
  }

  void StepExportImport(RefSession& s) {
    if (Chance(70)) {
      // Purged nodes cannot be exported verifiably: rehydrate them first (usually).
      for (auto& [id, n] : s.nodes) {
        if (!n.purged) continue;
        ASSERT_TRUE(service_->Rehydrate(s.info.tenant, s.info.id, id, n.blob).IsOk());
        n.purged = false;
      }
    }
    auto bundle = ExportSession(*service_, s.info.tenant, s.info.id);
    ASSERT_TRUE(bundle.IsOk()) << bundle.GetStatus().ToString();
    bool any_purged = false;
    for (const auto& [id, n] : s.nodes) any_purged |= n.purged;
    auto imported = ImportSession(*service_, *bundle, {});
    if (any_purged) {
      EXPECT_EQ(imported.GetStatus().Code(), StatusCode::kInvalidArgument);
      ++counts_["import refused"];
      return;
    }
    ++counts_["imported"];
    ASSERT_TRUE(imported.IsOk()) << imported.GetStatus().ToString();
    RefSession copy;
    copy.info = imported->session;
    std::vector<const RefNode*> by_seq;
    for (const auto& [id, n] : s.nodes) by_seq.push_back(&n);
    std::sort(by_seq.begin(), by_seq.end(), [](auto* a, auto* b) { return a->seq < b->seq; });
    for (const RefNode* n : by_seq) {
      RefNode c = *n;
      c.seq = copy.nodes.size() + 1;
      copy.nodes.emplace(c.id, c);
    }
    EXPECT_EQ(copy.info.head, s.info.head);
    EXPECT_EQ(copy.info.last_seq, s.nodes.size());
    sessions_.push_back(std::move(copy));
  }

  // ---- agreement

  void ExpectAgreement() {
    for (const RefSession& s : sessions_) {
      auto diff = service_->DiffSince(s.info.tenant, s.info.id, 0, 100000);
      ASSERT_TRUE(diff.IsOk()) << diff.GetStatus().ToString();
      EXPECT_EQ(diff->session.head, s.info.head);
      EXPECT_EQ(diff->session.head_seq, s.info.head_seq);
      EXPECT_EQ(diff->session.last_seq, s.info.last_seq);
      ASSERT_EQ(diff->nodes.size(), s.nodes.size());
      std::set<Id> parents;
      for (const Node& n : diff->nodes) {
        const RefNode& r = s.nodes.at(n.id);
        EXPECT_EQ(n.seq, r.seq);
        EXPECT_EQ(n.parent, r.parent);
        EXPECT_EQ(n.purged, r.purged);
        EXPECT_EQ(n.token_count, r.content.tokens.size());
        EXPECT_EQ(n.content.kind, r.content.kind);
        if (!r.purged) {
          EXPECT_EQ(n.content, r.content);
        }
        if (!n.parent.IsZero()) parents.insert(n.parent);
      }
      if (!s.info.head.IsZero()) {
        auto path = service_->Path(s.info.tenant, s.info.id, s.info.head);
        ASSERT_TRUE(path.IsOk());
        std::vector<Id> ids;
        for (const Node& n : *path) ids.push_back(n.id);
        EXPECT_EQ(ids, ModelPath(s, s.info.head));
      }
      auto branches = service_->ListBranches(s.info.tenant, s.info.id, 100000);
      ASSERT_TRUE(branches.IsOk());
      std::set<Id> tips;
      for (const BranchTip& t : branches->tips) tips.insert(t.id);
      std::set<Id> model_tips;
      for (const auto& [id, n] : s.nodes) {
        if (!parents.count(id)) model_tips.insert(id);
      }
      EXPECT_EQ(tips, model_tips);
      // Another tenant sees nothing.
      EXPECT_EQ(service_->GetSession(s.info.tenant + "-other", s.info.id).GetStatus().Code(),
                StatusCode::kNotFound);
    }
  }

  std::mt19937 rng_{static_cast<std::mt19937::result_type>(GetParam())};
  std::vector<RefSession> sessions_;
  int next_key_ = 0;
  std::map<std::string, int> counts_;
};

TEST_P(PropertyTest, ServiceAgreesWithTheReferenceModel) {
  for (const char* tenant : {"acme", "globex"}) {
    RefSession s;
    s.info = NewSession(tenant);
    sessions_.push_back(s);
  }
  constexpr int kSteps = 250;
  for (int step = 0; step < kSteps; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    RefSession& s = sessions_[Pick(sessions_.size())];
    int op = static_cast<int>(Pick(100));
    if (op < 60) {
      StepAppend(s);
    } else if (op < 72) {
      StepSetHead(s);
    } else if (op < 80) {
      StepPurge();
    } else if (op < 88) {
      StepRehydrate(s);
    } else if (op < 92) {
      StepExportImport(s);
    } else {
      Reopen();
      ++counts_["reopened"];
    }
    ExpectAgreement();
    if (::testing::Test::HasFatalFailure() || ::testing::Test::HasNonfatalFailure()) return;
  }
  Reopen();
  ExpectAgreement();
  std::string summary;
  for (const auto& [what, n] : counts_) summary += " " + what + "=" + std::to_string(n);
  std::cout << "[PropertyTest]" << summary << "\n";
  // The run must have exercised the interesting paths, not only plain appends.
  EXPECT_GT(counts_["conflict"], 0);
  EXPECT_GT(counts_["purged"], 0);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PropertyTest, ::testing::Values(1, 2, 3));

}  // namespace
}  // namespace llmsync::session
