#include "tests/deployer/fake_target.h"

#include <algorithm>

namespace ferry::deployer::testing {

absl::StatusOr<std::vector<TargetObject>> FakeTarget::Prepare(const AppScope&, std::vector<TargetObject> objects,
                                                             const FileFetcher&) {
  for (const TargetObject& o : objects) {
    if (o.key.kind == "Refused") return absl::InvalidArgumentError("kind Refused is refused");
  }
  return objects;
}

absl::Status FakeTarget::Apply(const AppScope& app, const TargetObject& desired, const TargetObject*, absl::Time,
                               const std::atomic<bool>* cancel) {
  ferry::MutexLock l(&mu_);
  if (gate_ && !gate_(desired)) return absl::UnavailableError("the deployer died during this apply (simulated)");
  ++running_;
  max_running_ = std::max(max_running_, running_);
  int& mine = running_per_app_[app.application_id];
  ++mine;
  max_per_app_[app.application_id] = std::max(max_per_app_[app.application_id], mine);
  ++waiting_[app.application_id];
  cv_.SignalAll();
  absl::Status out = absl::OkStatus();
  while (held_apps_.count(app.application_id)) {
    if (cancel != nullptr && cancel->load()) {
      out = absl::AbortedError("cancelled");
      break;
    }
    cv_.WaitWithTimeout(&mu_, absl::Milliseconds(20));  // Polls `cancel` too.
  }
  --waiting_[app.application_id];
  if (out.ok() && failing_apps_.count(app.application_id)) out = absl::InternalError("apply failed");
  --running_;
  --running_per_app_[app.application_id];
  if (out.ok()) {
    applied_[app.application_id].push_back(desired.key.kind + "/" + desired.key.name);
    drift_[app.application_id].erase(desired.key.ToString());  // Applied again: in sync.
    ++apply_counts_[app.application_id][desired.key.ToString() + "|" + desired.json];
    if (track_live_) live_[app.application_id][desired.key.ToString()] = desired.json;
  }
  return out;
}

absl::Status FakeTarget::Delete(const AppScope& app, const TargetObject& applied, absl::Time) {
  ferry::MutexLock l(&mu_);
  if (gate_ && !gate_(applied)) return absl::UnavailableError("the deployer died during this delete (simulated)");
  if (track_live_) live_[app.application_id].erase(applied.key.ToString());
  return absl::OkStatus();
}

ObservedObject FakeTarget::Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  ferry::MutexLock l(&mu_);
  ObservedObject o;
  o.exists = true;
  o.health = v1::HEALTH_STATUS_HEALTHY;
  o.live_json = applied != nullptr ? applied->json : "{}";
  o.drift = v1::DRIFT_STATUS_IN_SYNC;
  if (track_live_) {
    auto& live = live_[app.application_id];
    auto it = live.find(key.ToString());
    if (it == live.end()) {
      o.exists = false;
      o.live_json.clear();
      o.health = v1::HEALTH_STATUS_MISSING;
      o.drift = applied != nullptr ? v1::DRIFT_STATUS_MISSING : v1::DRIFT_STATUS_UNKNOWN;
      o.drift_message = "not live";
    } else {
      o.live_json = it->second;
      o.drift = applied == nullptr              ? v1::DRIFT_STATUS_UNKNOWN
                : applied->json == it->second ? v1::DRIFT_STATUS_IN_SYNC
                                              : v1::DRIFT_STATUS_MODIFIED;
      if (o.drift == v1::DRIFT_STATUS_MODIFIED) o.drift_message = "live object differs";
    }
  }
  auto app_it = drift_.find(app.application_id);
  if (app_it != drift_.end()) {
    auto it = app_it->second.find(key.ToString());
    if (it != app_it->second.end()) {
      o.drift = it->second;
      if (o.drift != v1::DRIFT_STATUS_IN_SYNC) o.drift_message = "changed by hand";
    }
  }
  return o;
}

absl::StatusOr<DryRunResult> FakeTarget::DryRun(const AppScope& app, const TargetObject& desired) {
  ferry::MutexLock l(&mu_);
  if (!dry_run_) return absl::UnimplementedError("the fake target has no dry run");
  dry_runs_[app.application_id].push_back(desired.key.kind + "/" + desired.key.name);
  std::string json = desired.json;
  if (!json.empty() && json.back() == '}') json = json.substr(0, json.size() - 1) + ",\"dryRun\":true}";
  return DryRunResult{json, ""};
}

bool FakeTarget::DryRunIsThePlan() const {
  ferry::MutexLock l(&mu_);
  return dry_run_is_the_plan_;
}

void FakeTarget::EnableDryRun(bool is_the_plan) {
  ferry::MutexLock l(&mu_);
  dry_run_ = true;
  dry_run_is_the_plan_ = is_the_plan;
}

std::vector<std::string> FakeTarget::dry_runs(const std::string& app) {
  ferry::MutexLock l(&mu_);
  return dry_runs_[app];
}

std::pair<v1::HealthStatus, std::string> FakeTarget::Health(const AppScope& app, const TargetObject& applied) {
  ferry::MutexLock l(&mu_);
  if (track_live_ && live_[app.application_id].count(applied.key.ToString()) == 0) {
    return {v1::HEALTH_STATUS_MISSING, "not live"};
  }
  return {v1::HEALTH_STATUS_HEALTHY, "healthy"};
}

absl::StatusOr<Target*> FakeTarget::For(const v1::DeployTarget& target) {
  {
    ferry::MutexLock l(&mu_);
    ++for_calls_;
  }
  if (target.kind() == v1::TARGET_KIND_UNSPECIFIED) return absl::InvalidArgumentError("target.kind is required");
  return this;
}

bool FakeTarget::TakeChanged(const AppScope& app) {
  ferry::MutexLock l(&mu_);
  return changed_.erase({app.application_id, app.environment_id}) > 0;
}

int FakeTarget::for_calls() {
  ferry::MutexLock l(&mu_);
  return for_calls_;
}

void FakeTarget::MarkChanged(const std::string& app, const std::string& env) {
  ferry::MutexLock l(&mu_);
  changed_.insert({app, env});
}

void FakeTarget::HoldApplies(const std::string& app) {
  ferry::MutexLock l(&mu_);
  held_apps_.insert(app);
}

void FakeTarget::ReleaseApplies(const std::string& app) {
  ferry::MutexLock l(&mu_);
  held_apps_.erase(app);
  cv_.SignalAll();
}

void FakeTarget::FailApplies(const std::string& app, bool fail) {
  ferry::MutexLock l(&mu_);
  if (fail) {
    failing_apps_.insert(app);
  } else {
    failing_apps_.erase(app);
  }
}

bool FakeTarget::WaitHeld(const std::string& app, absl::Duration timeout) {
  ferry::MutexLock l(&mu_);
  auto held = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = waiting_.find(app);
    return it != waiting_.end() && it->second > 0;
  };
  absl::Time deadline = absl::Now() + timeout;
  while (!held()) {
    if (absl::Now() >= deadline) return false;
    cv_.WaitWithDeadline(&mu_, deadline);
  }
  return true;
}

int FakeTarget::max_concurrent_applies() {
  ferry::MutexLock l(&mu_);
  return max_running_;
}

int FakeTarget::max_concurrent_applies(const std::string& app) {
  ferry::MutexLock l(&mu_);
  return max_per_app_[app];
}

std::vector<std::string> FakeTarget::applied(const std::string& app) {
  ferry::MutexLock l(&mu_);
  return applied_[app];
}

void FakeTarget::SetDrift(const std::string& app, const ObjectKey& key, v1::DriftStatus drift) {
  ferry::MutexLock l(&mu_);
  drift_[app][key.ToString()] = drift;
}

void FakeTarget::TrackLiveState() {
  ferry::MutexLock l(&mu_);
  track_live_ = true;
}

std::string FakeTarget::live(const std::string& app, const ObjectKey& key) {
  ferry::MutexLock l(&mu_);
  auto& objects = live_[app];
  auto it = objects.find(key.ToString());
  return it == objects.end() ? "" : it->second;
}

std::map<std::string, int> FakeTarget::apply_counts(const std::string& app) {
  ferry::MutexLock l(&mu_);
  return apply_counts_[app];
}

void FakeTarget::SetGate(std::function<bool(const TargetObject&)> gate) {
  ferry::MutexLock l(&mu_);
  gate_ = std::move(gate);
}

}  // namespace ferry::deployer::testing
