#include "llmsync/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>

namespace llmsync {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.IsOk());
  EXPECT_EQ(s.Code(), StatusCode::kOk);
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(StatusTest, ErrorCarriesCodeAndMessage) {
  Status s = Status::NotFound("session abc");
  EXPECT_FALSE(s.IsOk());
  EXPECT_EQ(s.Code(), StatusCode::kNotFound);
  EXPECT_EQ(s.Message(), "session abc");
  EXPECT_EQ(s.ToString(), "not_found: session abc");
}

TEST(StatusTest, EveryCodeHasADistinctName) {
  const StatusCode codes[] = {
      StatusCode::kOk,        StatusCode::kInvalidArgument, StatusCode::kNotFound,
      StatusCode::kConflict,  StatusCode::kAlreadyExists,   StatusCode::kResourceExhausted,
      StatusCode::kDataLoss,  StatusCode::kUnavailable,     StatusCode::kInternal,
      StatusCode::kCancelled, StatusCode::kUnimplemented};
  std::set<std::string_view> names;
  for (StatusCode c : codes) names.insert(StatusCodeName(c));
  EXPECT_EQ(names.size(), std::size(codes));
  EXPECT_EQ(StatusCodeName(StatusCode::kDataLoss), "data_loss");
  EXPECT_EQ(StatusCodeName(StatusCode::kResourceExhausted), "resource_exhausted");
}

TEST(StatusTest, OkStatusDropsMessage) {
  Status s(StatusCode::kOk, "ignored");
  EXPECT_TRUE(s.IsOk());
  EXPECT_EQ(s.Message(), "");
}

TEST(StatusTest, WithContextPrefixesErrorsOnly) {
  EXPECT_EQ(Status::DataLoss("bad checksum").WithContext("snapshot 7").Message(), "snapshot 7: bad checksum");
  EXPECT_EQ(Status::DataLoss("x").WithContext("c").Code(), StatusCode::kDataLoss);
  EXPECT_TRUE(Status::Ok().WithContext("anything").IsOk());
}

Result<int> ParsePositive(int v) {
  if (v <= 0) return Status::InvalidArgument("not positive: " + std::to_string(v));
  return v;
}

Result<int> Doubled(int v) {
  LLMSYNC_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status CheckBoth(int a, int b) {
  LLMSYNC_RETURN_IF_ERROR(ParsePositive(a).GetStatus());
  LLMSYNC_RETURN_IF_ERROR(ParsePositive(b).GetStatus());
  return Status::Ok();
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = Doubled(21);
  ASSERT_TRUE(r.IsOk());
  EXPECT_EQ(*r, 42);
  EXPECT_TRUE(r.GetStatus().IsOk());
}

TEST(ResultTest, PropagatesError) {
  Result<int> r = Doubled(-3);
  ASSERT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.GetStatus().Message(), "not positive: -3");
  EXPECT_EQ(r.ValueOr(7), 7);
}

TEST(ResultTest, ReturnIfErrorStopsAtFirstFailure) {
  EXPECT_TRUE(CheckBoth(1, 2).IsOk());
  EXPECT_EQ(CheckBoth(1, 0).Message(), "not positive: 0");
  EXPECT_EQ(CheckBoth(-1, 0).Message(), "not positive: -1");
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(5);
  ASSERT_TRUE(r.IsOk());
  std::unique_ptr<int> p = std::move(r).Value();
  EXPECT_EQ(*p, 5);
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalInRelease) {
#ifdef NDEBUG
  Result<int> r{Status::Ok()};
  EXPECT_FALSE(r.IsOk());
  EXPECT_EQ(r.GetStatus().Code(), StatusCode::kInternal);
#else
  GTEST_SKIP() << "asserts in debug builds";
#endif
}

}  // namespace
}  // namespace llmsync
