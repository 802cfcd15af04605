#include "common/concurrency/await_callback.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>

#include "absl/time/clock.h"

namespace ferry::concurrency {
namespace {

TEST(AwaitCallbackTest, ReturnsWhatTheCallbackWasGivenOnAnotherThreadLater) {
  std::thread worker;
  std::string got = AwaitCallback<std::string>([&](std::function<void(std::string)> done) {
    worker = std::thread([done = std::move(done)] {
      absl::SleepFor(absl::Milliseconds(20));
      done("from the worker");
    });
  });
  worker.join();
  EXPECT_EQ(got, "from the worker");
}

TEST(AwaitCallbackTest, ACallbackCalledInsideStartDoesNotDeadlock) {
  int got = AwaitCallback<int>([](std::function<void(int)> done) { done(42); });
  EXPECT_EQ(got, 42);
}

}  // namespace
}  // namespace ferry::concurrency
