#include <iostream>

#include "cli/commands.h"
#include "llmsync/version.h"

namespace llmsync::cli {

void AddVersionCommands(CLI::App& app, CliState& state) {
  CLI::App* version = app.add_subcommand("version", "Print the llmsync version");
  version->callback([&state] {
    std::cout << "llmsync " << kVersion << "\n";
    state.exit_code = 0;
  });

  CLI::App* help = app.add_subcommand("help", "Show the commands, or one command's options");
  auto topic = std::make_shared<std::string>();
  help->add_option("command", *topic, "The command to describe");
  help->callback([&app, &state, topic] {
    if (topic->empty()) {
      // app.help() would describe the selected subcommand ("help" itself), so format the root.
      std::cout << app.get_formatter()->make_help(&app, app.get_name(), CLI::AppFormatMode::Normal);
      state.exit_code = 0;
      return;
    }
    for (CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() == *topic) {
        std::cout << sub->help();
        state.exit_code = 0;
        return;
      }
    }
    std::cerr << "llmsync: unknown command '" << *topic << "'; run 'llmsync help' for the list\n";
    state.exit_code = 2;
  });
}

}  // namespace llmsync::cli
