#pragma once

#include <cstddef>
#include <functional>

#include "absl/status/status.h"

namespace ferry::concurrency {

// Runs fn(0) .. fn(n - 1) on at most `workers` threads (the caller's among
// them) and waits for all. Every index runs even when some fail; returns
// the failure of the lowest failing index, or OK. `fn` must be thread-safe;
// an item that throws fails with INTERNAL (RunGuarded), the others run on.
absl::Status ParallelFor(size_t n, int workers, const std::function<absl::Status(size_t)>& fn);

}  // namespace ferry::concurrency
