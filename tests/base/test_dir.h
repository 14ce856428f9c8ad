// A fresh temporary directory per test, removed when the test ends.
//
// Thread safety: one object per test; not shared.
#pragma once

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace llmsync::testing {

class TestDir {
 public:
  TestDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("llmsync_") + (info ? info->test_suite_name() : "t") + "_" +
                       (info ? info->name() : "x") + "_XXXXXX";
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    std::string pattern = (std::filesystem::temp_directory_path() / name).string();
    char* made = ::mkdtemp(pattern.data());
    if (made == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = made;
  }
  ~TestDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::string& Path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace llmsync::testing
