#include "common/server/stream_limiter.h"

#include <gtest/gtest.h>
#include <grpcpp/test/server_context_test_spouse.h>

#include <optional>
#include <vector>

#include <prometheus/text_serializer.h>

namespace ferry::server {
namespace {

StreamLimit Limit(int max, int reserved) {
  return StreamLimit{.service = "repo-watcher", .rpc = "WatchRevisions", .max_streams = max,
                     .reserved_for_services = reserved};
}

TEST(StreamLimiterTest, RefusesPastTheCapNamingTheLimitAndTheFlag) {
  StreamLimiter limiter(Limit(2, 0));
  std::vector<StreamLimiter::Slot> held;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<StreamLimiter::Slot> slot = limiter.Acquire(false);
    ASSERT_TRUE(slot.ok()) << slot.status();
    held.push_back(std::move(*slot));
  }
  absl::StatusOr<StreamLimiter::Slot> third = limiter.Acquire(false);
  ASSERT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.status().message(),
            "repo-watcher WatchRevisions: 2 streams are already open, the limit per RPC (--max-streams; 0 more are "
            "kept for Ferry services, --reserved-service-streams); close a stream or retry later");
  EXPECT_EQ(limiter.open(), 2);
}

TEST(StreamLimiterTest, AClosedStreamFreesItsSlot) {
  StreamLimiter limiter(Limit(1, 0));
  {
    absl::StatusOr<StreamLimiter::Slot> slot = limiter.Acquire(false);
    ASSERT_TRUE(slot.ok());
    StreamLimiter::Slot moved = std::move(*slot);  // a moved-from slot releases nothing
    EXPECT_FALSE(limiter.Acquire(false).ok());
    EXPECT_EQ(limiter.open(), 1);
  }
  EXPECT_EQ(limiter.open(), 0);
  EXPECT_TRUE(limiter.Acquire(false).ok());
}

TEST(StreamLimiterTest, ServicesGetTheReservedSlotsOthersDoNot) {
  StreamLimiter limiter(Limit(1, 2));
  EXPECT_EQ(limiter.capacity(), 3);
  std::vector<StreamLimiter::Slot> held;
  held.push_back(std::move(*limiter.Acquire(false)));
  EXPECT_FALSE(limiter.Acquire(false).ok()) << "a stranger took a reserved slot";
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<StreamLimiter::Slot> slot = limiter.Acquire(true);
    ASSERT_TRUE(slot.ok()) << i;
    held.push_back(std::move(*slot));
  }
  EXPECT_FALSE(limiter.Acquire(true).ok()) << "past every slot";
  // A reserved slot goes back to the reserve, not to strangers.
  held.pop_back();
  EXPECT_FALSE(limiter.Acquire(false).ok());
  EXPECT_TRUE(limiter.Acquire(true).ok());
  // A general slot freed is open to anyone again.
  held.erase(held.begin());
  EXPECT_TRUE(limiter.Acquire(false).ok());
}

// Only a verified client certificate makes a Ferry service (tested over real
// TLS in tests/common/auth/tls_test.cc); the x-ferry-service header the
// services once sent is anyone's to forge and buys nothing.
TEST(StreamLimiterTest, TheServiceHeaderMakesNoServiceCaller) {
  StreamLimiter limiter(Limit(0, 1));
  grpc::ServerContext stranger;
  EXPECT_FALSE(IsServiceCaller(stranger));
  EXPECT_FALSE(limiter.Acquire(stranger).ok());
  grpc::ServerContext forged;
  grpc::testing::ServerContextTestSpouse spouse(&forged);
  spouse.AddClientMetadata("x-ferry-service", "planner");
  EXPECT_FALSE(IsServiceCaller(forged));
  EXPECT_FALSE(limiter.Acquire(forged).ok());
  EXPECT_EQ(limiter.open(), 0);
}

TEST(StreamLimiterTest, NoLimiterMeansNoLimit) {
  grpc::ServerContext ctx;
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(AcquireStream(nullptr, ctx).ok());
}

TEST(StreamLimiterTest, CountsOpenAndRefusedStreams) {
  prometheus::Registry registry;
  StreamLimiter limiter(Limit(1, 0), &registry);
  std::optional<StreamLimiter::Slot> held(std::move(*limiter.Acquire(false)));
  EXPECT_FALSE(limiter.Acquire(false).ok());
  EXPECT_FALSE(limiter.Acquire(false).ok());
  std::string text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find(R"(ferry_grpc_streams_open{rpc="WatchRevisions",service="repo-watcher"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(ferry_grpc_streams_refused_total{rpc="WatchRevisions",service="repo-watcher"} 2)"),
            std::string::npos)
      << text;
  held.reset();
  text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find(R"(ferry_grpc_streams_open{rpc="WatchRevisions",service="repo-watcher"} 0)"), std::string::npos)
      << text;
}

TEST(StreamLimiterTest, ClientsRetryARefusalButNothingElse) {
  StreamLimiter limiter(Limit(0, 0));
  absl::Status refusal = limiter.Acquire(false).status();
  grpc::Status as_grpc(grpc::StatusCode::RESOURCE_EXHAUSTED, std::string(refusal.message()));
  EXPECT_TRUE(IsStreamLimitRefusal(as_grpc));
  EXPECT_FALSE(IsStreamLimitRefusal(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "Server Threadpool Exhausted")));
  EXPECT_FALSE(IsStreamLimitRefusal(grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(refusal.message()))));

  int calls = 0;
  grpc::Status s = RetryStreamLimitRefusals([&] { return ++calls < 3 ? as_grpc : grpc::Status::OK; });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  s = RetryStreamLimitRefusals([&] {
    ++calls;
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such commit");
  });
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(calls, 1);
  calls = 0;
  s = RetryStreamLimitRefusals(
      [&] {
        ++calls;
        return as_grpc;
      },
      3);
  EXPECT_TRUE(IsStreamLimitRefusal(s));
  EXPECT_EQ(calls, 3) << "gives up after the attempts";
}

}  // namespace
}  // namespace ferry::server
