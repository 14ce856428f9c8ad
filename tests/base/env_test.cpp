#include "base/env.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "base/fault_injection_env.h"
#include "test_dir.h"

namespace llmsync {
namespace {

using testing::TestDir;

TEST(PosixEnvTest, WriteReadMapAndList) {
  TestDir dir;
  Env* env = Env::Default();
  std::string path = dir.File("a.txt");
  {
    auto f = env->NewWritableFile(path, OpenMode::kTruncate);
    ASSERT_TRUE(f.IsOk()) << f.GetStatus().ToString();
    ASSERT_TRUE((*f)->Append("hello ").IsOk());
    ASSERT_TRUE((*f)->Append("world").IsOk());
    ASSERT_TRUE((*f)->Sync().IsOk());
    ASSERT_TRUE((*f)->Close().IsOk());
  }
  {
    auto f = env->NewWritableFile(path, OpenMode::kAppend);
    ASSERT_TRUE(f.IsOk());
    ASSERT_TRUE((*f)->Append("!").IsOk());
  }
  auto text = env->ReadFile(path);
  ASSERT_TRUE(text.IsOk());
  EXPECT_EQ(*text, "hello world!");
  EXPECT_EQ(*env->FileSize(path), 12u);

  auto mapped = env->MapReadOnly(path);
  ASSERT_TRUE(mapped.IsOk());
  auto bytes = (*mapped)->Bytes();
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()), "hello world!");

  auto names = env->ListDir(dir.Path());
  ASSERT_TRUE(names.IsOk());
  EXPECT_EQ(*names, std::vector<std::string>{"a.txt"});
}

TEST(PosixEnvTest, MissingFilesAreNotFound) {
  TestDir dir;
  Env* env = Env::Default();
  EXPECT_EQ(env->ReadFile(dir.File("nope")).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_EQ(env->MapReadOnly(dir.File("nope")).GetStatus().Code(), StatusCode::kNotFound);
  EXPECT_FALSE(env->FileExists(dir.File("nope")));
  EXPECT_EQ(env->RemoveFile(dir.File("nope")).Code(), StatusCode::kNotFound);
  EXPECT_EQ(env->MapReadOnly(dir.Path()).GetStatus().Code(), StatusCode::kInvalidArgument);
}

TEST(PosixEnvTest, EmptyFileMapsToEmptySpan) {
  TestDir dir;
  Env* env = Env::Default();
  ASSERT_TRUE(WriteFileAtomically(env, dir.File("empty"), "").IsOk());
  auto mapped = env->MapReadOnly(dir.File("empty"));
  ASSERT_TRUE(mapped.IsOk());
  EXPECT_TRUE((*mapped)->Bytes().empty());
}

TEST(PosixEnvTest, CreateDirsMakesParents) {
  TestDir dir;
  Env* env = Env::Default();
  std::string deep = dir.Path() + "/x/y/z";
  ASSERT_TRUE(env->CreateDirs(deep).IsOk());
  ASSERT_TRUE(env->CreateDirs(deep).IsOk());
  ASSERT_TRUE(WriteFileAtomically(env, deep + "/f", "data").IsOk());
  EXPECT_EQ(*env->ReadFile(deep + "/f"), "data");
  EXPECT_EQ(env->CreateDirs(deep + "/f").Code(), StatusCode::kAlreadyExists);
}

TEST(PathTest, DirNameAndJoin) {
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("c"), ".");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(JoinPath("", "b"), "b");
}

TEST(FaultInjectionEnvTest, FailedSyncLeavesOldContents) {
  TestDir dir;
  FaultInjectionEnv env(Env::Default());
  std::string path = dir.File("state");
  ASSERT_TRUE(WriteFileAtomically(&env, path, "v1").IsOk());
  env.FailNext(FaultOp::kSync, 1, Status::Internal("injected: sync failed"));
  Status s = WriteFileAtomically(&env, path, "v2");
  EXPECT_EQ(s.Code(), StatusCode::kInternal);
  EXPECT_EQ(*env.ReadFile(path), "v1");
  EXPECT_FALSE(env.FileExists(path + ".tmp")) << "temporary file must be cleaned up";
  ASSERT_TRUE(WriteFileAtomically(&env, path, "v3").IsOk()) << "the fault fires only once";
  EXPECT_EQ(*env.ReadFile(path), "v3");
}

TEST(FaultInjectionEnvTest, FailedRenameLeavesOldContents) {
  TestDir dir;
  FaultInjectionEnv env(Env::Default());
  std::string path = dir.File("state");
  ASSERT_TRUE(WriteFileAtomically(&env, path, "old").IsOk());
  env.FailNext(FaultOp::kRename, 1, Status::Internal("injected: rename failed"));
  EXPECT_FALSE(WriteFileAtomically(&env, path, "new").IsOk());
  EXPECT_EQ(*env.ReadFile(path), "old");
}

TEST(FaultInjectionEnvTest, WriteBudgetActsLikeAFullDisk) {
  TestDir dir;
  FaultInjectionEnv env(Env::Default());
  env.SetWriteBudget(10);
  auto f = env.NewWritableFile(dir.File("f"), OpenMode::kTruncate);
  ASSERT_TRUE(f.IsOk());
  EXPECT_TRUE((*f)->Append("12345").IsOk());
  EXPECT_TRUE((*f)->Append("67890").IsOk());
  Status s = (*f)->Append("x");
  EXPECT_EQ(s.Code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(env.BytesWritten(), 10);
  env.ClearFaults();
  EXPECT_TRUE((*f)->Append("x").IsOk());
}

TEST(FaultInjectionEnvTest, ManualClockMovesOnlyWhenAdvanced) {
  FaultInjectionEnv env(Env::Default());
  env.UseManualClock(1000, 1700000000000);
  EXPECT_EQ(env.NowMicros(), 1000);
  EXPECT_EQ(env.UnixMillis(), 1700000000000);
  env.AdvanceMicros(5000);
  EXPECT_EQ(env.NowMicros(), 6000);
  EXPECT_EQ(env.UnixMillis(), 1700000000005);
  env.SleepForMicros(1000000);
  EXPECT_EQ(env.NowMicros(), 1006000);
}

TEST(FaultInjectionEnvTest, CountsSyncs) {
  TestDir dir;
  FaultInjectionEnv env(Env::Default());
  ASSERT_TRUE(WriteFileAtomically(&env, dir.File("a"), "x").IsOk());
  EXPECT_EQ(env.SyncCount(), 2);  // the file and its directory
}

}  // namespace
}  // namespace llmsync
