// The default thread count: physical cores from sysfs topology, /proc/cpuinfo, or the logical count.
// Fake sysfs trees and cpuinfo texts in a temporary directory stand in for machines with
// hyperthreads, several packages and restricted affinity.
#include "engine/cpu_topology.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../base/test_dir.h"

namespace llmsync::engine {
namespace {

using testing::TestDir;

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

// cpuN's topology: package `package`, core `core`.
void AddCpu(const TestDir& dir, int cpu, int package, int core) {
  const std::string t = dir.File("cpu/cpu" + std::to_string(cpu) + "/topology/");
  WriteText(t + "core_id", std::to_string(core) + "\n");
  WriteText(t + "physical_package_id", std::to_string(package) + "\n");
}

TEST(CpuTopologyTest, SysfsCountsCoresNotHyperthreads) {
  TestDir dir;
  // 2 packages x 2 cores x 2 threads; core ids repeat across packages.
  int cpu = 0;
  for (int package = 0; package < 2; ++package) {
    for (int thread = 0; thread < 2; ++thread) {
      for (int core = 0; core < 2; ++core) AddCpu(dir, cpu++, package, core);
    }
  }
  CpuTopology all =
      DetectCpuTopology(Env::Default(), {0, 1, 2, 3, 4, 5, 6, 7}, dir.File("cpu"), dir.File("none"));
  EXPECT_EQ(all.physical_cores, 4);
  EXPECT_EQ(all.logical_cpus, 8);
  EXPECT_EQ(all.source, "sysfs");
  // An affinity mask holding both threads of package 0's core 0 and one of core 1.
  CpuTopology some = DetectCpuTopology(Env::Default(), {0, 1, 2}, dir.File("cpu"), dir.File("none"));
  EXPECT_EQ(some.physical_cores, 2);
  EXPECT_EQ(some.logical_cpus, 3);
}

TEST(CpuTopologyTest, CpuinfoWhenSysfsIsMissing) {
  TestDir dir;
  std::string cpuinfo;
  for (int p = 0; p < 4; ++p) {
    cpuinfo += "processor\t: " + std::to_string(p) + "\nvendor_id\t: GenuineIntel\nphysical id\t: 0\n" +
               "siblings\t: 4\ncore id\t\t: " + std::to_string(p % 2) + "\ncpu cores\t: 2\n\n";
  }
  WriteText(dir.File("cpuinfo"), cpuinfo);
  EXPECT_EQ(CountCpuinfoCores(cpuinfo, {}), 2);
  EXPECT_EQ(CountCpuinfoCores(cpuinfo, {0, 2}), 1);  // two threads of one core
  CpuTopology t = DetectCpuTopology(Env::Default(), {0, 1, 2, 3}, dir.File("no-sysfs"), dir.File("cpuinfo"));
  EXPECT_EQ(t.physical_cores, 2);
  EXPECT_EQ(t.source, "cpuinfo");
}

TEST(CpuTopologyTest, LogicalCountWhenNothingIsReadable) {
  TestDir dir;
  WriteText(dir.File("cpuinfo"), "processor\t: 0\nmodel name\t: some VM without core ids\n\n");
  CpuTopology t = DetectCpuTopology(Env::Default(), {0, 1, 2}, dir.File("no-sysfs"), dir.File("cpuinfo"));
  EXPECT_EQ(t.physical_cores, 3);
  EXPECT_EQ(t.source, "hardware_concurrency");
}

TEST(CpuTopologyTest, ThisMachineHasAtLeastOneCoreAndNoMoreThanItsCpus) {
  const int n = DefaultThreadCount();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace llmsync::engine
