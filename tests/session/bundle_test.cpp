// Export/import bundles: round trips, re-derived ids for another tenant or model, the transcript,
// and tamper detection that imports nothing.
#include "session/bundle.h"

#include <gtest/gtest.h>

#include "session_test_util.h"

namespace llmsync::session {
namespace {

using testing::Assistant;
using testing::Draft;
using testing::Reasoning;
using testing::SessionFixture;
using testing::User;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t eol = text.find('\n', start);
    lines.push_back(text.substr(start, eol - start));
    start = eol + 1;
  }
  return lines;
}

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

class BundleTest : public SessionFixture {
 protected:
  void SetUp() override {
    SessionFixture::SetUp();
    s_ = NewSession();
    NodeDraft call = Draft(NodeKind::kToolCall, "{\"city\":\"Oslo\"}");
    call.tool_name = "weather";
    call.call_id = "c1";
    main_ = AppendOrDie(
        s_, Id(),
        {Draft(NodeKind::kSystem, "sys"), User("what's the weather?"), Reasoning("check the tool"), call,
         Assistant("Rainy, 4\xc2\xb0"
                   "C.")});
    side_ = AppendOrDie(s_, main_.ids[1], {Assistant("abandoned branch")});
    ASSERT_TRUE(service_->SetHead("acme", s_.id, main_.head).IsOk());
    auto bundle = ExportSession(*service_, "acme", s_.id);
    ASSERT_TRUE(bundle.IsOk()) << bundle.GetStatus().ToString();
    bundle_ = *bundle;
  }

  std::size_t SessionCount(const std::string& tenant = "acme") {
    return service_->ListSessions(tenant, 1000)->size();
  }

  std::vector<Node> AllNodes(const SessionInfo& s) {
    return service_->DiffSince(s.tenant, s.id, 0, 1000)->nodes;
  }

  void ExpectImportFails(const std::string& bundle, StatusCode code, const std::string& fragment) {
    std::size_t before = SessionCount();
    auto r = ImportSession(*service_, bundle, {});
    ASSERT_EQ(r.GetStatus().Code(), code) << r.GetStatus().ToString();
    EXPECT_NE(r.GetStatus().Message().find(fragment), std::string::npos) << r.GetStatus().ToString();
    EXPECT_EQ(SessionCount(), before);
  }

  SessionInfo s_;
  AppendResult main_;
  AppendResult side_;
  std::string bundle_;
};

TEST_F(BundleTest, ExportHasHeaderEveryNodeAndATranscript) {
  auto lines = Lines(bundle_);
  ASSERT_EQ(lines.size(), 1u + 6u + 1u);
  EXPECT_NE(lines[0].find("\"type\":\"llmsync.bundle\""), std::string::npos);
  EXPECT_NE(lines[0].find("\"nodes\":6"), std::string::npos);
  EXPECT_NE(lines[1].find(main_.ids[0].ToHex()), std::string::npos);
  EXPECT_NE(lines[6].find("abandoned branch"), std::string::npos);
  auto transcript = ExportTranscript(*service_, "acme", s_.id);
  ASSERT_TRUE(transcript.IsOk());
  EXPECT_NE(transcript->find("## user\n\nwhat's the weather?"), std::string::npos) << *transcript;
  EXPECT_NE(transcript->find("## reasoning (hidden, 14 tokens)"), std::string::npos) << *transcript;
  EXPECT_EQ(transcript->find("check the tool"), std::string::npos);
  EXPECT_NE(transcript->find("## tool_call `weather` (call c1)"), std::string::npos);
  EXPECT_EQ(transcript->find("abandoned branch"), std::string::npos);  // not on the current branch
  EXPECT_NE(lines[7].find("\"type\":\"transcript\""), std::string::npos);
}

TEST_F(BundleTest, ImportRoundTripsIntoANewSessionWithTheSameIds) {
  auto r = ImportSession(*service_, bundle_, {});
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_NE(r->session.id, s_.id);
  EXPECT_FALSE(r->retokenized);
  for (const auto& [from, to] : r->id_map) EXPECT_EQ(from, to);
  auto original = AllNodes(s_);
  auto imported = AllNodes(r->session);
  ASSERT_EQ(imported.size(), original.size());
  for (std::size_t i = 0; i < original.size(); ++i) {
    EXPECT_EQ(imported[i].id, original[i].id);
    EXPECT_EQ(imported[i].parent, original[i].parent);
    EXPECT_EQ(imported[i].content, original[i].content);
    EXPECT_EQ(imported[i].created_at_ms, original[i].created_at_ms);
  }
  EXPECT_EQ(service_->GetSession("acme", r->session.id)->head, main_.head);
  // Hidden content is sealed afresh under this server's key.
  ASSERT_FALSE(imported[2].sealed.empty());
  EXPECT_TRUE(OpenSealed(*Options().seal_key, imported[2].sealed).IsOk());
  // And the import exports to the same nodes.
  auto again = ExportSession(*service_, "acme", r->session.id);
  ASSERT_TRUE(again.IsOk());
  EXPECT_EQ(Lines(*again).size(), Lines(bundle_).size());
}

TEST_F(BundleTest, ImportUnderAnotherTenantReDerivesIds) {
  ImportOptions options;
  options.tenant = "globex";
  auto r = ImportSession(*service_, bundle_, options);
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  auto nodes = AllNodes(r->session);
  ASSERT_EQ(nodes.size(), 6u);
  EXPECT_NE(nodes[0].id, main_.ids[0]);
  EXPECT_EQ(nodes[0].id, NodeIdFor("globex", Id(), nodes[0].content));
  EXPECT_EQ(nodes[1].id, NodeIdFor("globex", nodes[0].id, nodes[1].content));
  EXPECT_EQ(r->id_map[4].first, main_.head);
  EXPECT_EQ(service_->GetSession("globex", r->session.id)->head, r->id_map[4].second);
  EXPECT_EQ(service_->GetSession("acme", r->session.id).GetStatus().Code(), StatusCode::kNotFound);
}

TEST_F(BundleTest, ImportIntoAnotherModelReTokenizesAndKeepsTheText) {
  ImportOptions options;
  options.model = Id(Sha256::Hash(std::string_view("other-model")));
  EXPECT_EQ(ImportSession(*service_, bundle_, options).GetStatus().Code(), StatusCode::kInvalidArgument);
  options.retokenize = [](NodeKind, std::string_view text) -> Result<std::vector<TokenId>> {
    return std::vector<TokenId>{static_cast<TokenId>(text.size()), 1000};
  };
  auto r = ImportSession(*service_, bundle_, options);
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_TRUE(r->retokenized);
  EXPECT_EQ(r->session.model, *options.model);
  auto nodes = AllNodes(r->session);
  ASSERT_EQ(nodes.size(), 6u);
  EXPECT_EQ(nodes[1].content.text, "what's the weather?");
  EXPECT_EQ(nodes[1].content.tokens, (std::vector<TokenId>{19, 1000}));
  EXPECT_NE(nodes[1].id, main_.ids[1]);

  options.retokenize = [](NodeKind, std::string_view) -> Result<std::vector<TokenId>> {
    return Status::Unavailable("tokenizer not loaded");
  };
  std::size_t before = SessionCount();
  EXPECT_EQ(ImportSession(*service_, bundle_, options).GetStatus().Code(), StatusCode::kUnavailable);
  EXPECT_EQ(SessionCount(), before);
}

TEST_F(BundleTest, EditedTextIsDetectedAndNothingIsImported) {
  auto lines = Lines(bundle_);
  std::string& line = lines[2];
  line.replace(line.find("weather?"), 8, "whether?");
  ExpectImportFails(Join(lines), StatusCode::kDataLoss, "bundle line 3: node id");
}

TEST_F(BundleTest, EditedTokensOrKindAreDetected) {
  auto lines = Lines(bundle_);
  lines[5].replace(lines[5].find("\"tokens\":[") + 10, 1, "9");
  ExpectImportFails(Join(lines), StatusCode::kDataLoss, "bundle line 6");
  lines = Lines(bundle_);
  lines[2].replace(lines[2].find("\"user\""), 6, "\"summary\"");
  ExpectImportFails(Join(lines), StatusCode::kDataLoss, "bundle line 3");
}

TEST_F(BundleTest, TruncatedReorderedOrPaddedBundlesAreDetected) {
  auto lines = Lines(bundle_);
  std::vector<std::string> truncated(lines.begin(), lines.begin() + 4);
  ExpectImportFails(Join(truncated), StatusCode::kDataLoss, "truncated");
  std::vector<std::string> swapped = lines;
  std::swap(swapped[2], swapped[3]);
  ExpectImportFails(Join(swapped), StatusCode::kDataLoss, "bundle line 3");
  std::vector<std::string> doubled = lines;
  doubled.insert(doubled.begin() + 2, lines[2]);
  ExpectImportFails(Join(doubled), StatusCode::kDataLoss, "more nodes than the header");
  std::vector<std::string> dropped = lines;
  dropped.erase(dropped.begin() + 3);
  ExpectImportFails(Join(dropped), StatusCode::kDataLoss, "");
}

TEST_F(BundleTest, MalformedBundlesAreInvalidArguments) {
  ExpectImportFails("", StatusCode::kInvalidArgument, "empty");
  ExpectImportFails("not json\n", StatusCode::kInvalidArgument, "bundle line 1");
  ExpectImportFails("{\"type\":\"node\"}\n", StatusCode::kInvalidArgument, "header");
  auto lines = Lines(bundle_);
  std::vector<std::string> versioned = lines;
  versioned[0].replace(versioned[0].find("\"version\":1"), 11, "\"version\":9");
  ExpectImportFails(Join(versioned), StatusCode::kInvalidArgument, "version 9");
  std::vector<std::string> garbage = lines;
  garbage[3] = "[1,2,3]";
  ExpectImportFails(Join(garbage), StatusCode::kInvalidArgument, "bundle line 4");
  std::vector<std::string> wrong_type = lines;
  wrong_type[3].replace(wrong_type[3].find("\"seq\":"), 6, "\"seq\":\"x\",\"old\":");
  ExpectImportFails(Join(wrong_type), StatusCode::kInvalidArgument, "field 'seq'");
}

TEST_F(BundleTest, PurgedHiddenNodesCannotBeImported) {
  env_.AdvanceMicros(3600LL * 1000 * 1000);
  ASSERT_EQ(*service_->PurgeHidden(0, std::nullopt), 1u);
  auto bundle = ExportSession(*service_, "acme", s_.id);
  ASSERT_TRUE(bundle.IsOk());
  EXPECT_NE(bundle->find("\"purged\":true"), std::string::npos);
  ExpectImportFails(*bundle, StatusCode::kInvalidArgument, "purged hidden node");
}

TEST_F(BundleTest, EmptySessionsRoundTrip) {
  SessionInfo empty = NewSession();
  auto bundle = ExportSession(*service_, "acme", empty.id);
  ASSERT_TRUE(bundle.IsOk());
  auto r = ImportSession(*service_, *bundle, {});
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  EXPECT_TRUE(AllNodes(r->session).empty());
  EXPECT_TRUE(service_->GetSession("acme", r->session.id)->head.IsZero());
}

// The fuzz corpus's bundle was written by a Python script from the encoding documented in node.h
// and bundle.h, independently of this implementation: it must verify and import.
class BundleCorpusTest : public SessionFixture {};

TEST_F(BundleCorpusTest, ImportsABundleMadeByAnIndependentImplementation) {
  auto text = Env::Default()->ReadFile(std::string(LLMSYNC_SOURCE_DIR) +
                                       "/tests/session/bundle_corpus/valid_chain.jsonl");
  ASSERT_TRUE(text.IsOk()) << text.GetStatus().ToString();
  auto bundle = ParseBundle(*text);
  ASSERT_TRUE(bundle.IsOk()) << bundle.GetStatus().ToString();
  EXPECT_TRUE(VerifyBundle(*bundle, SessionLimits{}).IsOk());
  auto r = ImportSession(*service_, *text, {});
  ASSERT_TRUE(r.IsOk()) << r.GetStatus().ToString();
  auto path = service_->Path("acme", r->session.id, r->session.head);
  ASSERT_TRUE(path.IsOk());
  ASSERT_EQ(path->size(), 6u);
  EXPECT_EQ((*path)[3].content.tool_name, "weather");
  EXPECT_EQ((*path)[5].content.text,
            "Rainy, 4\xc2\xb0"
            "C.");
}

}  // namespace
}  // namespace llmsync::session
