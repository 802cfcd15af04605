#pragma once

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "services/planner/live_state_source.h"

namespace ferry::planner::testing {

// Live state held in memory per (application, environment); unknown ones are
// empty (nothing deployed). `Apply` simulates a successful deployment.
// Thread-safe.
class FakeLiveStateSource final : public LiveStateSource {
 public:
  absl::StatusOr<v1::LiveState> Observe(const std::string& app, const std::string& env, const v1::DeployTarget&,
                                        const std::vector<v1::ObjectRef>&) override {
    absl::Duration delay;
    {
      std::lock_guard<std::mutex> lock(mu_);
      peak_concurrent_ = std::max(peak_concurrent_, ++running_);
      delay = delay_;
    }
    absl::SleepFor(delay);
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
    ++observations_;
    if (!fail_.ok()) return fail_;
    v1::LiveState s = states_[{app, env}];
    s.set_application_id(app);
    s.set_environment_id(env);
    return s;
  }
  // Makes the live state exactly the plan's manifests (applied == live).
  void Apply(const v1::Plan& plan) {
    std::lock_guard<std::mutex> lock(mu_);
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
    std::lock_guard<std::mutex> lock(mu_);
    states_[{app, env}] = std::move(state);
  }
  void FailWith(absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_ = std::move(s);
  }
  // Each Observe takes `d` (outside the lock), to show overlap.
  void SetDelay(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    delay_ = d;
  }
  // The most Observe calls seen running at once.
  int peak_concurrent() {
    std::lock_guard<std::mutex> lock(mu_);
    return peak_concurrent_;
  }
  int observations() {
    std::lock_guard<std::mutex> lock(mu_);
    return observations_;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, v1::LiveState> states_;
  absl::Status fail_;
  int observations_ = 0;
  absl::Duration delay_;
  int running_ = 0;
  int peak_concurrent_ = 0;
};

// A clock the test moves. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time t) : now_(t) {}
  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace ferry::planner::testing
