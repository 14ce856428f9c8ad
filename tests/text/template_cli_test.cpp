// `llmsync template render` end to end: the real binary, template files and GGUF models.
#include <fstream>

#include <gtest/gtest.h>

#include "base/env.h"
#include "engine/gguf/gguf_writer.h"
#include "run_cli.h"
#include "test_dir.h"

namespace llmsync {
namespace {

using testing::RunLlmsync;
using testing::TestDir;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

constexpr const char* kMessages =
    R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])";

// A minimal GGUF holding only tokenizer metadata, optionally with a chat template.
void WriteModel(const std::string& path, const char* chat_template) {
  engine::GgufWriter writer;
  writer.SetString("general.architecture", "llama");
  writer.SetStringArray("tokenizer.ggml.tokens", {"<unk>", "<BOS>", "<EOS>", "a"});
  writer.SetUint32("tokenizer.ggml.bos_token_id", 1);
  writer.SetUint32("tokenizer.ggml.eos_token_id", 2);
  if (chat_template != nullptr) writer.SetString("tokenizer.chat_template", chat_template);
  ASSERT_TRUE(writer.WriteTo(Env::Default(), path).IsOk());
}

TEST(TemplateCliTest, RendersATemplateFileExactly) {
  TestDir dir;
  WriteFile(dir.File("t.jinja"),
            "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
            "{% if add_generation_prompt %}[assistant] {% endif %}\n");
  WriteFile(dir.File("m.json"), kMessages);
  auto r = RunLlmsync("template render --template " + dir.File("t.jinja") + " --messages " +
                      dir.File("m.json") + " --add-generation-prompt --bos '<s>'");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "<s>[system] Be brief.\n[user] Hi\n[assistant] ");  // no newline added
  auto plain =
      RunLlmsync("template render --template " + dir.File("t.jinja") + " --messages " + dir.File("m.json"));
  EXPECT_EQ(plain.out, "[system] Be brief.\n[user] Hi\n");
}

TEST(TemplateCliTest, ToolsAndRequestBodies) {
  TestDir dir;
  WriteFile(dir.File("t.jinja"), "{{ tools | tojson }}|{{ messages | length }}");
  WriteFile(dir.File("body.json"),
            R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"name": "f"}]})");
  auto r = RunLlmsync("template render --template " + dir.File("t.jinja") + " --messages " +
                      dir.File("body.json"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "[{\"name\": \"f\"}]|1");
  WriteFile(dir.File("m.json"), kMessages);
  WriteFile(dir.File("tools.json"), R"([{"type": "function", "function": {"name": "g"}}])");
  auto none =
      RunLlmsync("template render --template " + dir.File("t.jinja") + " --messages " + dir.File("m.json"));
  EXPECT_EQ(none.out, "null|2");  // transformers passes tools=None when there are none
  auto with = RunLlmsync("template render --template " + dir.File("t.jinja") + " --messages " +
                         dir.File("m.json") + " --tools " + dir.File("tools.json"));
  EXPECT_EQ(with.out, "[{\"type\": \"function\", \"function\": {\"name\": \"g\"}}]|2");
}

TEST(TemplateCliTest, ModelTemplateAndSpecialTokens) {
  TestDir dir;
  WriteModel(dir.File("m.gguf"),
             "{{ bos_token }}{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}");
  WriteFile(dir.File("m.json"), kMessages);
  auto r = RunLlmsync("template render --model " + dir.File("m.gguf") + " --messages " + dir.File("m.json"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out, "<BOS>Be brief.<EOS>Hi<EOS>");
  auto overridden = RunLlmsync("template render --model " + dir.File("m.gguf") + " --messages " +
                               dir.File("m.json") + " --bos B --eos E");
  EXPECT_EQ(overridden.out, "BBe brief.EHiE");
}

TEST(TemplateCliTest, ModelWithoutTemplateFallsBackToChatMl) {
  TestDir dir;
  WriteModel(dir.File("m.gguf"), nullptr);
  WriteFile(dir.File("m.json"), kMessages);
  auto r = RunLlmsync("template render --model " + dir.File("m.gguf") + " --messages " + dir.File("m.json") +
                      " --add-generation-prompt");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(
      r.out,
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(TemplateCliTest, FailuresAreReported) {
  TestDir dir;
  WriteFile(dir.File("m.json"), kMessages);
  WriteFile(dir.File("bad.jinja"), "line one\n{% include 'other.jinja' %}");
  auto unsupported =
      RunLlmsync("template render --template " + dir.File("bad.jinja") + " --messages " + dir.File("m.json"));
  EXPECT_EQ(unsupported.exit_code, 1);
  EXPECT_NE(unsupported.out.find("'{% include %}' statement (line 2)"), std::string::npos) << unsupported.out;

  WriteFile(dir.File("raise.jinja"), "{{ raise_exception('System role not supported') }}");
  auto raised = RunLlmsync("template render --template " + dir.File("raise.jinja") + " --messages " +
                           dir.File("m.json"));
  EXPECT_EQ(raised.exit_code, 1);
  EXPECT_NE(raised.out.find("System role not supported"), std::string::npos) << raised.out;

  auto missing = RunLlmsync("template render --template " + dir.File("raise.jinja") + " --messages " +
                            dir.File("nope.json"));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.out.find("nope.json"), std::string::npos) << missing.out;

  WriteFile(dir.File("notjson.json"), "[{");
  auto bad_json = RunLlmsync("template render --template " + dir.File("raise.jinja") + " --messages " +
                             dir.File("notjson.json"));
  EXPECT_EQ(bad_json.exit_code, 1);
  EXPECT_NE(bad_json.out.find("invalid JSON"), std::string::npos) << bad_json.out;

  auto neither = RunLlmsync("template render --messages " + dir.File("m.json"));
  EXPECT_EQ(neither.exit_code, 2);
  auto both = RunLlmsync("template render --template a --model b --messages " + dir.File("m.json"));
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.out.find("excludes"), std::string::npos) << both.out;
}

}  // namespace
}  // namespace llmsync
