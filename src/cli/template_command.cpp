// `llmsync template render`: renders a chat template (a .jinja file, or the one inside a GGUF
// model, ChatML when the model has none) for a conversation given as JSON, and prints the text
// exactly, without adding a newline, so templates can be checked from outside.
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "base/env.h"
#include "cli/commands.h"
#include "cli/template_json.h"
#include "engine/gguf/gguf_reader.h"
#include "text/chat_template.h"

namespace llmsync::cli {
namespace {

struct RenderFlags {
  std::string template_path;
  std::string model_path;
  std::string messages_path;
  std::string tools_path;
  bool add_generation_prompt = false;
  std::optional<std::string> bos;
  std::optional<std::string> eos;
  std::optional<std::int64_t> now;
};

Result<std::string> ReadFile(const std::string& path) { return Env::Default()->ReadFile(path); }

// The text of the token whose id is stored under `id_key`, or "" when the model has none.
std::string SpecialToken(const engine::GgufFile& gguf, const char* id_key) {
  Result<std::int64_t> id = gguf.GetInt(id_key);
  if (!id.IsOk()) return "";
  Result<std::vector<std::string_view>> tokens = gguf.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.IsOk() || *id < 0 || static_cast<std::size_t>(*id) >= tokens->size()) return "";
  return std::string((*tokens)[static_cast<std::size_t>(*id)]);
}

// The template source (nullopt: use ChatML) and the model's BOS/EOS texts.
struct TemplateSource {
  std::optional<std::string> source;
  std::string bos;
  std::string eos;
};

Result<TemplateSource> LoadTemplate(const RenderFlags& flags) {
  TemplateSource out;
  if (!flags.template_path.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string source, ReadFile(flags.template_path));
    out.source = std::move(source);
    return out;
  }
  LLMSYNC_ASSIGN_OR_RETURN(auto gguf, engine::GgufFile::Open(Env::Default(), flags.model_path));
  Result<std::string_view> source = gguf->GetString("tokenizer.chat_template");
  if (source.IsOk()) {
    out.source = std::string(*source);
  } else if (source.GetStatus().Code() != StatusCode::kNotFound) {
    return source.GetStatus();
  }
  out.bos = SpecialToken(*gguf, "tokenizer.ggml.bos_token_id");
  out.eos = SpecialToken(*gguf, "tokenizer.ggml.eos_token_id");
  return out;
}

Result<std::string> Render(const RenderFlags& flags) {
  LLMSYNC_ASSIGN_OR_RETURN(TemplateSource loaded, LoadTemplate(flags));
  text::ChatTemplateOptions options;
  options.bos_token = flags.bos.value_or(loaded.bos);
  options.eos_token = flags.eos.value_or(loaded.eos);
  if (flags.now) options.strftime_now = text::jinja::FixedStrftime(*flags.now);
  LLMSYNC_ASSIGN_OR_RETURN(text::ChatTemplate chat_template,
                           text::ChatTemplate::ForModel(loaded.source, std::move(options)));

  text::ChatRenderRequest request;
  request.add_generation_prompt = flags.add_generation_prompt;
  LLMSYNC_ASSIGN_OR_RETURN(std::string messages_text, ReadFile(flags.messages_path));
  LLMSYNC_ASSIGN_OR_RETURN(text::jinja::Value messages, ParseJsonTemplateValue(messages_text));
  // Either a list of messages or a chat request body {"messages": [...], "tools": [...]}.
  if (messages.IsDict()) {
    const text::jinja::Value* tools = messages.AsDict().FindString("tools");
    if (tools != nullptr) request.tools = *tools;
    const text::jinja::Value* list = messages.AsDict().FindString("messages");
    if (list == nullptr) return Status::InvalidArgument(flags.messages_path + ": no \"messages\" list");
    messages = *list;
  }
  if (!messages.IsList())
    return Status::InvalidArgument(flags.messages_path + ": expected a list of messages");
  request.messages = messages.AsList();
  if (!flags.tools_path.empty()) {
    LLMSYNC_ASSIGN_OR_RETURN(std::string tools_text, ReadFile(flags.tools_path));
    LLMSYNC_ASSIGN_OR_RETURN(request.tools, ParseJsonTemplateValue(tools_text));
  }
  return chat_template.Render(request);
}

}  // namespace

void AddTemplateCommands(CLI::App& app, CliState& state) {
  CLI::App* group =
      app.add_subcommand("template", "Chat templates: render a model's template for a conversation");
  group->require_subcommand(1);
  CLI::App* render = group->add_subcommand(
      "render",
      "Render a chat template for messages given as JSON; prints the text exactly (no newline added)");
  auto flags = std::make_shared<RenderFlags>();
  auto* tmpl = render->add_option("--template", flags->template_path, "A Jinja chat template file");
  auto* model =
      render->add_option("--model", flags->model_path,
                         "A GGUF model: its tokenizer.chat_template (ChatML when absent) and BOS/EOS");
  tmpl->excludes(model);
  model->excludes(tmpl);
  render->add_option("--messages", flags->messages_path, "JSON: a list of messages, or {\"messages\": [...]}")
      ->required();
  render->add_flag("--add-generation-prompt", flags->add_generation_prompt,
                   "End with the assistant turn's opening");
  render->add_option("--tools", flags->tools_path, "JSON: a list of tool schemas");
  render->add_option("--bos", flags->bos, "The bos_token text (default: the model's, or empty)");
  render->add_option("--eos", flags->eos, "The eos_token text (default: the model's, or empty)");
  render->add_option("--now", flags->now,
                     "strftime_now() instant, seconds since the Unix epoch (default: now)");
  render->callback([flags, &state] {
    if (flags->template_path.empty() && flags->model_path.empty()) {
      std::cerr << "error: one of --template or --model is required\n";
      state.exit_code = 2;
      return;
    }
    Result<std::string> text = Render(*flags);
    if (!text.IsOk()) {
      std::cerr << "error: " << text.GetStatus().ToString() << "\n";
      state.exit_code = 1;
      return;
    }
    std::cout.write(text->data(), static_cast<std::streamsize>(text->size()));
    std::cout.flush();
    state.exit_code = 0;
  });
}

}  // namespace llmsync::cli
