#pragma once

// The last-resort catch: the one place where an exception that escaped
// Ferry's own code (a third-party library that throws, a bug) is turned into
// a failed item and a log line instead of std::terminate. Every thread body
// and every gRPC handler runs its work through RunGuarded (BackgroundLoop
// steps, ParallelFor items, server::Handle, deployment and poll workers), so
// no exception crosses a thread or an RPC.
//
// This is a net, not a way to report errors: code below handlers returns
// absl::Status; a caught exception is logged at error level as a bug.

#include <string_view>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::concurrency {

namespace internal {
// Inside a catch block: logs the exception being handled (what() for a
// std::exception, "not a std::exception" otherwise) with `name`, and returns
// INTERNAL "<name>: threw: <what>".
absl::Status StatusOfCurrentException(std::string_view name);
}  // namespace internal

// Runs `fn` and returns what it returns; when it throws, the INTERNAL status
// described above instead. `fn` returns absl::Status, absl::StatusOr<T> or
// void (RunGuarded then returns absl::Status, OK when it returned). With
// `threw`, *threw says whether the status came from an exception (callers
// that treat a surprise differently from a returned INTERNAL).
template <typename Fn>
auto RunGuarded(std::string_view name, Fn&& fn, bool* threw = nullptr) {
  using R = std::invoke_result_t<Fn>;
  if (threw != nullptr) *threw = false;
  if constexpr (std::is_void_v<R>) {
    try {
      std::forward<Fn>(fn)();
      return absl::OkStatus();
    } catch (...) {
      if (threw != nullptr) *threw = true;
      return internal::StatusOfCurrentException(name);
    }
  } else {
    static_assert(std::is_constructible_v<R, absl::Status>,
                  "RunGuarded: fn must return void, absl::Status or absl::StatusOr<T>");
    try {
      return R(std::forward<Fn>(fn)());
    } catch (...) {
      if (threw != nullptr) *threw = true;
      return R(internal::StatusOfCurrentException(name));
    }
  }
}

}  // namespace ferry::concurrency
