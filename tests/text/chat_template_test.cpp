// Chat-template rendering, the ChatML fallback and incremental rendering.
#include <gtest/gtest.h>

#include "text/chat_template.h"

namespace llmsync::text {
namespace {

using jinja::Value;
using jinja::ValueDict;

Value Message(const std::string& role, const std::string& content) {
  ValueDict d;
  d.Set(Value::String("role"), Value::String(role));
  d.Set(Value::String("content"), Value::String(content));
  return Value::Dict(std::move(d));
}

TEST(ChatTemplateTest, ChatMlFallbackWhenTheModelHasNoTemplate) {
  auto tmpl = ChatTemplate::ForModel(std::nullopt, {});
  ASSERT_TRUE(tmpl.IsOk());
  EXPECT_TRUE(tmpl->IsChatMl());
  ChatRenderRequest request;
  request.messages = {Message("system", "Be brief."), Message("user", "Hi")};
  request.add_generation_prompt = true;
  auto text = tmpl->Render(request);
  ASSERT_TRUE(text.IsOk()) << text.GetStatus().ToString();
  EXPECT_EQ(
      *text,
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

}  // namespace
}  // namespace llmsync::text
