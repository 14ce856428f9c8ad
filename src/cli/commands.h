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

}  // namespace llmsync::cli
