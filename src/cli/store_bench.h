// `llmsync bench store`: throughput and latency of the durable store, as one JSON object.
//
// Thread safety: registration happens on the main thread; the benchmark starts its own threads.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.h"

namespace llmsync::cli {

// Adds `store` under the `bench` group.
void AddStoreBenchCommand(CLI::App& bench, CliState& state);

}  // namespace llmsync::cli
