// Real vocabularies end to end (issue 18): a Llama-3.2-shaped test model carrying the real Llama 3
// vocabulary (../shared/vectors/tokenizer/ggml-vocab-llama-bpe.gguf, llama3 rope factors, tied
// embeddings) and a qwen3 model carrying the Qwen3 vocabulary, each served by a real `llmsync
// serve` process. Random weights, tiny dimensions (n_embd 64, 2 layers): the vocabularies are the
// large part. Checked through the HTTP API:
//   - the tokenizer vectors: every case appended as a `template` node (tokenized literally) is
//     frozen as exactly the ids the vectors give; as `user` nodes, the chat template from the file
//     wraps them in its markup (and those same ids appear where no whitespace meets the markup);
//   - the stop set the server derives from the file (its startup log) and the kernel set and
//     thread count in force;
//   - generation ends at the file's end-of-turn token: a required tool call's grammar makes even
//     random weights close the call and the turn, and the run's node ends with <|eot_id|> /
//     <|im_end|>;
//   - a sampled stream over the whole vocabulary sends valid UTF-8 in every event.
// Skips with a message when ../shared is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "../text/vocab_vectors.h"
#include "serve_process.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

namespace llmsync::testing {
namespace {

struct RealVocab {
  std::string name;  // ggml-vocab-<name>.gguf
  std::string make_args;
  std::string user_prefix_first;  // the template's markup before the first user message
  std::string user_suffix;        // ... after a user message (what the template puts after the last one)
  std::string end_of_turn;        // the token that closes an assistant turn
  std::string stops;              // the startup log's stop set
  bool template_trims = false;    // the template strips the message (Llama 3's `| trim`)
};

const RealVocab kLlama3 = {
    "llama-bpe", "--arch llama --llama3-rope --tie-embeddings",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
    // This Llama 3 template writes the assistant header after the last message whatever
    // add_generation_prompt says, so each appended message carries it (a trailer, see
    // ChatTemplate::RenderIncrement).
    "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>",
    "generation stops at <|end_of_text|> (128001), <|eot_id|> (128009); chat template: "
    "tokenizer.chat_template of the file",
    true};
const RealVocab kQwen3 = {"qwen3",
                          "--arch qwen3 --tie-embeddings",
                          "<|im_start|>user\n",
                          "<|im_end|>\n",
                          "<|im_end|>",
                          "generation stops at <|endoftext|> (151643), <|im_end|> (151645); chat template: "
                          "tokenizer.chat_template of the file",
                          false};

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

class RealVocabTest : public ::testing::TestWithParam<RealVocab> {
 protected:
  void SetUp() override {
    const RealVocab& v = GetParam();
    LLMSYNC_REQUIRE_SHARED("vectors/tokenizer/ggml-vocab-" + v.name + ".gguf.out");
    model_ = dir_.File(v.name + ".gguf");
    auto made = RunLlmsync("model make-test " + v.make_args + " --vocab " + VocabVectorPath(v.name) +
                           " --n-embd 64 --n-layer 2 --n-head 4 --n-head-kv 2 --n-ff 128 --type q8_0 --seed 3"
                           " --out " +
                           model_);
    ASSERT_EQ(made.exit_code, 0) << made.out;
    auto tok = text::LoadTokenizerFromFile(Env::Default(), model_);
    ASSERT_TRUE(tok.IsOk()) << tok.GetStatus().ToString();
    tokenizer_ = std::move(tok).Value();
    vectors_ = ReadVocabVectors(v.name);
    ASSERT_EQ(vectors_.inputs.size(), vectors_.outputs.size());
    server_ = std::make_unique<ServeProcess>(model_, dir_.File("data"));
    server_->Start();
  }
  void TearDown() override {
    if (server_) server_->Kill(SIGTERM);
  }

  client::HttpClient& Client() { return server_->Client(); }

  // Markup of the template, tokenized as the server tokenizes it (control tokens recognised).
  std::vector<std::int32_t> Markup(const std::string& text) {
    text::EncodeOptions o;
    o.parse_special = true;
    auto ids = tokenizer_->Encode(text, o);
    EXPECT_TRUE(ids.IsOk()) << ids.GetStatus().ToString();
    return ids.IsOk() ? *ids : std::vector<std::int32_t>{};
  }

  // Appends `texts` as a chain of `kind` nodes to a new session; returns the frozen tokens of each.
  std::vector<std::vector<std::int32_t>> Freeze(const std::string& kind,
                                                const std::vector<std::string>& texts) {
    Json session = PostJson(Client(), "/v1/sessions", Json::object());
    const std::string id = session["id"];
    Json nodes = Json::array();
    for (const std::string& t : texts) nodes.push_back({{"kind", kind}, {"text", t}});
    Json appended = PostJson(Client(), "/v1/sessions/" + id + "/nodes", {{"nodes", nodes}});
    EXPECT_EQ(appended["nodes"].size(), texts.size()) << appended.dump();
    return SessionTokens(id, appended["nodes"]);
  }

  // The frozen tokens of `nodes` (objects with "id") in session `session`.
  std::vector<std::vector<std::int32_t>> SessionTokens(const std::string& session, const Json& nodes) {
    auto r = Client().Get("/v1/sessions/" + session + "?tokens=1");
    EXPECT_TRUE(r.IsOk() && r->status == 200);
    Json view = r.IsOk() ? Json::parse(r->body, nullptr, false) : Json();
    std::vector<std::vector<std::int32_t>> out;
    for (const Json& wanted : nodes) {
      for (const Json& n : view["nodes"]) {
        if (n["id"] == wanted["id"]) out.push_back(n["tokens"].get<std::vector<std::int32_t>>());
      }
    }
    EXPECT_EQ(out.size(), nodes.size()) << view.dump().substr(0, 2000);
    return out;
  }

  TestDir dir_;
  std::string model_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  VocabVectors vectors_;
  std::unique_ptr<ServeProcess> server_;
};

TEST_P(RealVocabTest, ServesTheVocabularyEndToEnd) {
  const RealVocab& v = GetParam();
  ASSERT_NE(server_, nullptr);

  // The stop set and the engine in force, as the server announces them.
  auto log = Env::Default()->ReadFile(server_->LogPath());
  ASSERT_TRUE(log.IsOk());
  EXPECT_NE(log->find(v.stops), std::string::npos) << *log;
  EXPECT_NE(log->find("engine: kernel set "), std::string::npos) << *log;
  EXPECT_NE(log->find(", 1 threads ("), std::string::npos) << *log;  // ServeProcess passes --threads 1

  // The vectors, literally: template nodes are tokenized without markup or BOS.
  std::vector<std::string> texts;
  std::vector<std::vector<std::int32_t>> expected;
  for (std::size_t i = 0; i < vectors_.inputs.size(); ++i) {
    if (vectors_.inputs[i].empty()) continue;  // a node has text
    texts.push_back(vectors_.inputs[i]);
    expected.push_back(vectors_.outputs[i]);
  }
  ASSERT_GT(texts.size(), 30u);
  std::vector<std::vector<std::int32_t>> frozen = Freeze("template", texts);
  ASSERT_EQ(frozen.size(), texts.size());
  int matched = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(frozen[i], expected[i]) << v.name << " case " << i << ": \"" << texts[i] << "\"";
    matched += frozen[i] == expected[i];
  }
  std::cout << "[ vectors  ] " << v.name << " through the server: " << matched << "/" << texts.size() << "\n";

  // As user messages: the file's template wraps them in its markup, and the server tokenizes the
  // rendered text as a whole, as the model's tokenizer does a prompt. Where a message starts with no
  // whitespace (which would merge with the markup's newline) its vector ids appear verbatim. Llama
  // 3's template trims the message, so only cases without surrounding whitespace are sent there.
  std::vector<std::string> user_texts;
  std::vector<std::vector<std::int32_t>> user_ids;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (v.template_trims && (IsAsciiSpace(texts[i].front()) || IsAsciiSpace(texts[i].back()))) continue;
    user_texts.push_back(texts[i]);
    user_ids.push_back(expected[i]);
  }
  ASSERT_GT(user_texts.size(), 10u);
  // One session per message: each is the conversation's first, rendered whole.
  std::vector<std::vector<std::int32_t>> users;
  for (const std::string& t : user_texts) {
    std::vector<std::vector<std::int32_t>> one = Freeze("user", {t});
    ASSERT_EQ(one.size(), 1u);
    users.push_back(one[0]);
  }
  int verbatim = 0;
  for (std::size_t i = 0; i < users.size(); ++i) {
    const std::string& prefix = v.user_prefix_first;
    EXPECT_EQ(users[i], Markup(prefix + user_texts[i] + v.user_suffix))
        << v.name << " user message " << i << ": \"" << user_texts[i] << "\"";
    if (IsAsciiSpace(user_texts[i].front())) continue;
    std::vector<std::int32_t> want = Markup(prefix);
    want.insert(want.end(), user_ids[i].begin(), user_ids[i].end());
    for (std::int32_t id : Markup(v.user_suffix)) want.push_back(id);
    EXPECT_EQ(users[i], want) << v.name << " user message " << i << ": \"" << user_texts[i] << "\"";
    ++verbatim;
  }
  EXPECT_GT(verbatim, 10);

  // Generation ends at the end-of-turn token: a required tool call's grammar closes the call and
  // then the turn, with the token the template ends assistant turns with, so even random weights
  // reach it.
  const std::int32_t eot = Markup(v.end_of_turn).at(0);
  Json params = {{"type", "object"}, {"properties", {{"ok", {{"type", "boolean"}}}}}, {"required", {"ok"}}};
  Json chat = PostJson(
      Client(), "/v1/chat/completions",
      {{"messages", {{{"role", "user"}, {"content", "Is it raining?"}}}},
       {"max_tokens", 96},
       {"seed", 5},
       {"tools", {{{"type", "function"}, {"function", {{"name", "check"}, {"parameters", params}}}}}},
       {"tool_choice", "required"}});
  ASSERT_EQ(chat["choices"][0]["finish_reason"], "tool_calls") << chat.dump();
  const std::string session = chat["llmsync"]["session"];
  std::vector<std::vector<std::int32_t>> result =
      SessionTokens(session, {{{"id", chat["llmsync"]["runs"][0]["node"]}}});
  ASSERT_EQ(result.size(), 1u);
  ASSERT_FALSE(result[0].empty());
  EXPECT_EQ(result[0].back(), eot) << "the assistant node ends with " << v.end_of_turn;

  // A sampled stream over the whole vocabulary: every event is valid UTF-8, and so is the text.
  std::string streamed;
  int events = 0;
  int status = 0;
  Json request = {{"messages", {{{"role", "user"}, {"content", "Say something."}}}},
                  {"max_tokens", 48},
                  {"temperature", 1.0},
                  {"seed", 11},
                  {"stream", true}};
  client::HttpClient c("127.0.0.1", server_->Port(), std::chrono::seconds(120));
  Status s = c.StreamRequest(
      "POST", "/v1/chat/completions", request.dump(), {},
      [&](const client::SseEvent& e) {
        EXPECT_TRUE(text::IsValidUtf8(e.data)) << "event " << events;
        ++events;
        if (e.data == "[DONE]") return true;
        Json chunk = Json::parse(e.data, nullptr, false);
        if (chunk.is_object() && !chunk["choices"].empty() &&
            chunk["choices"][0]["delta"].contains("content")) {
          std::string piece = chunk["choices"][0]["delta"]["content"];
          EXPECT_TRUE(text::IsValidUtf8(piece));
          streamed += piece;
        }
        return true;
      },
      &status);
  ASSERT_TRUE(s.IsOk()) << s.ToString();
  EXPECT_EQ(status, 200);
  EXPECT_GT(events, 10);
  EXPECT_TRUE(text::IsValidUtf8(streamed));
  EXPECT_FALSE(streamed.empty());
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, RealVocabTest, ::testing::Values(kLlama3, kQwen3),
                         [](const auto& info) { return info.param.name == "qwen3" ? "qwen3" : "llama3"; });

}  // namespace
}  // namespace llmsync::testing
