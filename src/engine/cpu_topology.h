// How many threads the engine uses by default: one per physical core this process may run on.
// Decode streams weights from memory and prefill saturates each core's integer pipeline, so a
// second hyperthread on a core adds contention, not throughput (llama.cpp defaults the same way).
//
// Sources, in order: for each CPU in the process's affinity mask, sysfs
// (<sys_cpu_dir>/cpuN/topology/core_id and physical_package_id), counting distinct (package, core)
// pairs; else /proc/cpuinfo ("physical id" / "core id" of the allowed processors); else
// std::thread::hardware_concurrency(); never less than 1.
//
// Thread safety: pure functions (file reads go through the Env).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/env.h"

namespace llmsync::engine {

struct CpuTopology {
  int physical_cores = 1;  // distinct cores among the allowed CPUs
  int logical_cpus = 1;    // allowed CPUs (hardware threads)
  std::string source;      // "sysfs", "cpuinfo" or "hardware_concurrency"
};

// The topology of `allowed_cpus` (CPU indices; empty: every CPU the source lists).
CpuTopology DetectCpuTopology(Env* env, const std::vector<int>& allowed_cpus,
                              const std::string& sys_cpu_dir = "/sys/devices/system/cpu",
                              const std::string& cpuinfo_path = "/proc/cpuinfo");

// Distinct (physical id, core id) pairs among the processors of a /proc/cpuinfo text whose
// "processor" number is in `allowed_cpus` (all when empty); 0 when the text has no core ids.
int CountCpuinfoCores(std::string_view cpuinfo, const std::vector<int>& allowed_cpus);

// The CPUs this process may run on (sched_getaffinity); empty when unknown.
std::vector<int> AllowedCpus();

// The engine's default thread count: physical cores of the allowed CPUs (cached after the first call).
int DefaultThreadCount();

}  // namespace llmsync::engine
