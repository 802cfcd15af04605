#pragma once

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "services/planner/live_state_source.h"

namespace ferry::planner::testing {

// Live state held in memory per (application, environment); unknown ones are
// empty (nothing deployed). `Apply` simulates a successful deployment.
// Thread-safe.
class FakeLiveStateSource final : public LiveStateSource {
 public:
  absl::StatusOr<v1::LiveState> Observe(const std::string& app, const std::string& env, const v1::DeployTarget&,
                                        const std::vector<v1::Manifest>&) override {
    absl::Duration delay;
    {
      MutexLock lock(&mu_);
      peak_concurrent_ = std::max(peak_concurrent_, ++running_);
      delay = delay_;
    }
    absl::SleepFor(delay);
    bool throws = false;
    {
      MutexLock lock(&mu_);
      throws = throw_for_.count(app) > 0;
      if (throws) {
        --running_;
        ++observations_;
      }
    }
    if (throws) throw std::runtime_error("live state of " + app + " blew up");
    MutexLock lock(&mu_);
    --running_;
    ++observations_;
    if (!fail_.ok()) return fail_;
    if (auto it = fail_app_.find(app); it != fail_app_.end()) return it->second;
    v1::LiveState s = states_[{app, env}];
    s.set_application_id(app);
    s.set_environment_id(env);
    return s;
  }
  // Makes the live state exactly the plan's manifests (applied == live).
  void Apply(const v1::Plan& plan) {
    MutexLock lock(&mu_);
    v1::LiveState& s = states_[{plan.application_id(), plan.environment_id()}];
    s.clear_objects();
    *s.mutable_revision() = plan.target_revision();
    for (const auto& m : plan.manifests()) {
      v1::LiveObject* o = s.add_objects();
      *o->mutable_object() = m.object();
      o->set_live_json(m.json());
      o->set_applied_json(m.json());
    }
  }
  void Set(const std::string& app, const std::string& env, v1::LiveState state) {
    MutexLock lock(&mu_);
    states_[{app, env}] = std::move(state);
  }
  void FailWith(absl::Status s) {
    MutexLock lock(&mu_);
    fail_ = std::move(s);
  }
  // Observe of `app` fails with `s` (OK: no longer).
  void FailAppWith(const std::string& app, absl::Status s) {
    MutexLock lock(&mu_);
    if (s.ok()) {
      fail_app_.erase(app);
    } else {
      fail_app_[app] = std::move(s);
    }
  }
  // Observe of `app` throws std::runtime_error (a bug, a library's surprise).
  void ThrowFor(const std::string& app) {
    MutexLock lock(&mu_);
    throw_for_.insert(app);
  }
  // Each Observe takes `d` (outside the lock), to show overlap.
  void SetDelay(absl::Duration d) {
    MutexLock lock(&mu_);
    delay_ = d;
  }
  // The most Observe calls seen running at once.
  int peak_concurrent() {
    MutexLock lock(&mu_);
    return peak_concurrent_;
  }
  int observations() {
    MutexLock lock(&mu_);
    return observations_;
  }

 private:
  Mutex mu_;
  std::map<std::pair<std::string, std::string>, v1::LiveState> states_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, absl::Status> fail_app_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> throw_for_ ABSL_GUARDED_BY(mu_);
  int observations_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  int peak_concurrent_ ABSL_GUARDED_BY(mu_) = 0;
};

// A clock the test moves. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time t) : now_(t) {}
  absl::Time Now() const override {
    MutexLock lock(&mu_);
    return now_;
  }
  void Set(absl::Time t) {
    MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::planner::testing
