#include "common/concurrency/parallel_for.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/concurrency/last_resort.h"

namespace ferry::concurrency {

absl::Status ParallelFor(size_t n, int workers, const std::function<absl::Status(size_t)>& fn) {
  std::vector<absl::Status> results(n);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) results[i] = RunGuarded("parallel item", [&] { return fn(i); });
  };
  const size_t helpers = std::min(n, static_cast<size_t>(std::max(workers, 1))) - (n > 0 ? 1 : 0);
  std::vector<std::thread> threads;
  threads.reserve(helpers);
  for (size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  for (absl::Status& s : results) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace ferry::concurrency
