// The llmsync executable: parses the command line and dispatches to a subcommand. This is the CLI
// boundary: any exception that escapes a command becomes an "error: ..." line and exit code 1.
#include <exception>
#include <iostream>
#include <string>

#include "cli/commands.h"

namespace {

bool IsSubcommand(CLI::App& app, const std::string& name) {
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->check_name(name)) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  using llmsync::cli::CliState;
  CLI::App app{"llmsync: conversations as replicated state, served from a CPU engine for GGUF models",
               "llmsync"};
  app.require_subcommand(1);
  app.fallthrough(false);
  CliState state;
  llmsync::cli::AddVersionCommands(app, state);
  llmsync::cli::AddTemplateCommands(app, state);
  llmsync::cli::AddTokenizeCommands(app, state);
  llmsync::cli::AddStoreCommands(app, state);
  llmsync::cli::AddModelCommands(app, state);
  llmsync::cli::AddEvalCommands(app, state);
  llmsync::cli::AddBenchKernelsCommands(app, state);
  llmsync::cli::AddBenchKvcacheCommands(app, state);
  llmsync::cli::AddBenchEngineCommands(app, state);
  llmsync::cli::AddBenchConstraintCommands(app, state);
  llmsync::cli::AddServeCommands(app, state);
  llmsync::cli::AddChatCommands(app, state);

  if (argc > 1 && argv[1][0] != '-' && !IsSubcommand(app, argv[1])) {
    std::cerr << "llmsync: unknown command '" << argv[1]
              << "'\nRun 'llmsync help' for the list of commands.\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      std::cerr << "llmsync: " << e.what() << "\nRun 'llmsync help' for usage.\n";
      return 2;
    }
    return app.exit(e);  // --help and friends print and return 0
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return state.exit_code;
}
