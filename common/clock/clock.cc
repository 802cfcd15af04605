#include "common/clock/clock.h"

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"

namespace ferry {
namespace {

class SystemAlarm final : public Alarm {
 public:
  bool SleepUntil(absl::Time deadline) override {
    MutexLock lock(&mu_);
    while (!woken_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) break;
    }
    const bool woken = woken_;
    woken_ = false;
    return woken;
  }
  void Wake() override {
    MutexLock lock(&mu_);
    woken_ = true;
    cv_.Signal();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

std::unique_ptr<Alarm> SystemClock::NewAlarm() const { return std::make_unique<SystemAlarm>(); }

}  // namespace ferry
