// The registry of `llmsync` subcommands. Each command family lives in its own file and exposes one
// Add...Commands function; main.cpp calls them all. A command's callback stores its exit code in
// CliState instead of calling exit(), so destructors run and buffers flush.
//
// Thread safety: used only from the main thread during parsing.
#pragma once

#include <CLI/CLI.hpp>

namespace llmsync::cli {

struct CliState {
  int exit_code = 0;
};

void AddVersionCommands(CLI::App& app, CliState& state);
void AddTemplateCommands(CLI::App& app, CliState& state);  // template render
void AddTokenizeCommands(CLI::App& app, CliState& state);  // tokenize, bench tokenizer
void AddStoreCommands(CLI::App& app, CliState& state);     // export, import, bench store
void AddModelCommands(CLI::App& app, CliState& state);     // model make-test, model info
void AddEvalCommands(CLI::App& app, CliState& state);      // eval, generate

// bench kernels (bench_kernels_command.cpp)
void AddBenchKernelsCommands(CLI::App& app, CliState& state);
void AddBenchKvcacheCommands(CLI::App& app, CliState& state);     // bench kvcache
void AddBenchEngineCommands(CLI::App& app, CliState& state);      // bench engine
void AddBenchConstraintCommands(CLI::App& app, CliState& state);  // bench constraint

// The subcommand `name` of `parent`, created when absent: lets several command files add their own
// children to a shared group such as `bench`.
inline CLI::App* GetOrAddSubcommand(CLI::App& parent, const std::string& name,
                                    const std::string& description) {
  for (CLI::App* sub : parent.get_subcommands({})) {
    if (sub->get_name() == name) return sub;
  }
  CLI::App* sub = parent.add_subcommand(name, description);
  sub->require_subcommand(1);
  return sub;
}

void AddServeCommands(CLI::App& app, CliState& state);  // serve, config example
void AddChatCommands(CLI::App& app, CliState& state);   // chat, demo, bench trace, bench sse

}  // namespace llmsync::cli
