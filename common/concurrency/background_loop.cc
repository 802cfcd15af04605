#include "common/concurrency/background_loop.h"

#include <utility>

#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"

namespace ferry::concurrency {
namespace {

const WaitableClock* SystemClockInstance() {
  static const SystemClock* clock = new SystemClock();
  return clock;
}

}  // namespace

BackgroundLoop::BackgroundLoop(std::string name, Step step, LoopOptions options, const WaitableClock* clock)
    : name_(std::move(name)),
      step_(std::move(step)),
      options_(std::move(options)),
      clock_(clock != nullptr ? clock : SystemClockInstance()),
      alarm_(clock_->NewAlarm()) {}

BackgroundLoop::~BackgroundLoop() { Stop(); }

void BackgroundLoop::Start() {
  MutexLock lock(&mu_);
  if (started_ || stop_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void BackgroundLoop::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  alarm_->Wake();
  std::thread thread;
  {
    MutexLock lock(&mu_);
    if (!thread_.joinable() || thread_.get_id() == std::this_thread::get_id()) return;
    thread = std::move(thread_);
  }
  thread.join();
}

void BackgroundLoop::Wake() { alarm_->Wake(); }

bool BackgroundLoop::Stopping() {
  MutexLock lock(&mu_);
  return stop_;
}

absl::StatusOr<absl::Duration> BackgroundLoop::RunStep() { return RunGuarded(name_, step_); }

void BackgroundLoop::Run() {
  Backoff backoff(options_.backoff);
  bool failed = false;
  absl::Time next = clock_->Now() + options_.first_run_after;
  while (!Stopping()) {
    const bool wakes_count = !failed || options_.wake_ends_backoff;
    while (!Stopping() && clock_->Now() < next) {
      if (alarm_->SleepUntil(next) && wakes_count) break;
    }
    if (Stopping()) return;
    const absl::Time began = clock_->Now();
    absl::StatusOr<absl::Duration> result = RunStep();
    if (result.ok()) {
      backoff.Reset();
      failed = false;
      const absl::Time from = options_.wait_from_step_start ? began : clock_->Now();
      next = *result == absl::InfiniteDuration() ? absl::InfiniteFuture() : from + *result;
      continue;
    }
    failed = true;
    const absl::Duration wait = backoff.Next();
    if (options_.on_failure) {
      options_.on_failure(result.status(), wait);
    } else {
      logging::Warn("background step failed; will retry",
                    {{"loop", name_}, {"error", result.status().ToString()},
                     {"retry_in_ms", absl::ToInt64Milliseconds(wait)}});
    }
    next = clock_->Now() + wait;
  }
}

}  // namespace ferry::concurrency
