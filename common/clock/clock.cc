#include "common/clock/clock.h"

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ferry {
namespace {

class SystemAlarm final : public Alarm {
 public:
  bool SleepUntil(absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(&woken_), deadline);
    const bool woken = woken_;
    woken_ = false;
    return woken;
  }
  void Wake() override {
    absl::MutexLock lock(&mu_);
    woken_ = true;
  }

 private:
  absl::Mutex mu_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<Alarm> SystemClock::NewAlarm() const { return std::make_unique<SystemAlarm>(); }

}  // namespace ferry
