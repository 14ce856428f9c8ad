#include "engine/cpu_topology.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <thread>
#include <utility>

namespace llmsync::engine {
namespace {

// The integer at the start of `text` after leading blanks; nullopt when there is none.
std::optional<int> LeadingInt(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data()) return std::nullopt;
  return value;
}

std::optional<int> ReadIntFile(Env* env, const std::string& path) {
  auto text = env->ReadFile(path);
  if (!text.IsOk()) return std::nullopt;
  return LeadingInt(*text);
}

bool Allowed(const std::vector<int>& allowed, int cpu) {
  return allowed.empty() || std::find(allowed.begin(), allowed.end(), cpu) != allowed.end();
}

}  // namespace

int CountCpuinfoCores(std::string_view cpuinfo, const std::vector<int>& allowed_cpus) {
  std::set<std::pair<int, int>> cores;
  int processor = -1;
  int package = 0;
  int core = -1;
  auto flush = [&] {
    if (processor >= 0 && core >= 0 && Allowed(allowed_cpus, processor)) cores.insert({package, core});
    processor = -1;
    package = 0;
    core = -1;
  };
  while (!cpuinfo.empty()) {
    std::size_t eol = cpuinfo.find('\n');
    std::string_view line = cpuinfo.substr(0, eol);
    cpuinfo.remove_prefix(eol == std::string_view::npos ? cpuinfo.size() : eol + 1);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) flush();  // blank: next processor
      continue;
    }
    std::string_view key = line.substr(0, colon);
    while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.remove_suffix(1);
    std::optional<int> value = LeadingInt(line.substr(colon + 1));
    if (!value) continue;
    if (key == "processor") {
      if (processor >= 0) flush();
      processor = *value;
    } else if (key == "physical id") {
      package = *value;
    } else if (key == "core id") {
      core = *value;
    }
  }
  flush();
  return static_cast<int>(cores.size());
}

CpuTopology DetectCpuTopology(Env* env, const std::vector<int>& allowed_cpus, const std::string& sys_cpu_dir,
                              const std::string& cpuinfo_path) {
  CpuTopology t;
  const int hardware = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  t.logical_cpus = allowed_cpus.empty() ? hardware : static_cast<int>(allowed_cpus.size());

  std::vector<int> cpus = allowed_cpus;
  if (cpus.empty()) {
    for (int i = 0; i < hardware; ++i) cpus.push_back(i);
  }
  std::set<std::pair<int, int>> cores;
  bool complete = true;
  for (int cpu : cpus) {
    const std::string dir = sys_cpu_dir + "/cpu" + std::to_string(cpu) + "/topology/";
    std::optional<int> core = ReadIntFile(env, dir + "core_id");
    std::optional<int> package = ReadIntFile(env, dir + "physical_package_id");
    if (!core || !package) {
      complete = false;
      break;
    }
    cores.insert({*package, *core});
  }
  if (complete && !cores.empty()) {
    t.physical_cores = static_cast<int>(cores.size());
    t.source = "sysfs";
    return t;
  }
  if (auto cpuinfo = env->ReadFile(cpuinfo_path); cpuinfo.IsOk()) {
    if (int n = CountCpuinfoCores(*cpuinfo, allowed_cpus); n > 0) {
      t.physical_cores = n;
      t.source = "cpuinfo";
      return t;
    }
  }
  t.physical_cores = t.logical_cpus;
  t.source = "hardware_concurrency";
  return t;
}

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i) {
    if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  return cpus;
}

int DefaultThreadCount() {
  static const int kCount = std::max(1, DetectCpuTopology(Env::Default(), AllowedCpus()).physical_cores);
  return kCount;
}

}  // namespace llmsync::engine
