#include "common/concurrency/last_resort.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "common/concurrency/parallel_for.h"

namespace ferry::concurrency {
namespace {

// The three kinds of surprise a thread or handler meets: a std::exception,
// something that is not one, and the one that took the planner down
// (nlohmann's type_error.316 on invalid UTF-8).
void ThrowRuntimeError() { throw std::runtime_error("boom"); }
void ThrowInt() { throw 42; }
void ThrowJsonTypeError() {
  nlohmann::json j = std::string("\xff\xfe");
  (void)j.dump();  // type_error.316: invalid UTF-8 byte
}

TEST(RunGuardedTest, AVoidFunctionThatReturnsIsOk) {
  int calls = 0;
  absl::Status s = RunGuarded("noop", [&] { ++calls; });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 1);
}

TEST(RunGuardedTest, ValuesAndStatusesPassThrough) {
  absl::StatusOr<int> v = RunGuarded("value", []() -> absl::StatusOr<int> { return 7; });
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  absl::Status s = RunGuarded("status", [] { return absl::NotFoundError("nope"); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
}

TEST(RunGuardedTest, EveryKindOfExceptionBecomesInternalNamingWhere) {
  struct Case {
    void (*fn)();
    std::string what;
  };
  for (const Case& c : {Case{ThrowRuntimeError, "boom"}, Case{ThrowInt, "not a std::exception"},
                        Case{ThrowJsonTypeError, "type_error.316"}}) {
    absl::Status s = RunGuarded("the step", c.fn);
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find("the step"), std::string::npos) << s;
    EXPECT_NE(s.message().find(c.what), std::string::npos) << s;
    absl::StatusOr<std::string> v = RunGuarded("a value", [&]() -> absl::StatusOr<std::string> {
      c.fn();
      return std::string("unreached");
    });
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInternal) << v.status();
  }
}

TEST(ParallelForTest, AnItemThatThrowsFailsAloneAndTheOthersRun) {
  std::atomic<int> ran{0};
  absl::Status s = ParallelFor(6, 3, [&](size_t i) -> absl::Status {
    ++ran;
    if (i == 1) ThrowRuntimeError();
    if (i == 3) ThrowInt();
    if (i == 4) ThrowJsonTypeError();
    return absl::OkStatus();
  });
  EXPECT_EQ(ran.load(), 6);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
  EXPECT_NE(s.message().find("boom"), std::string::npos) << s;  // the lowest failing index
}

}  // namespace
}  // namespace ferry::concurrency
