#include "services/deployer/drift_controller.h"

#include <algorithm>
#include <map>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/concurrency/backoff.h"
#include "common/logging/logger.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/audit_events.h"
#include "common/status/status_macros.h"

namespace ferry::deployer {

DriftController::DriftController(DeploymentRecords* records, DriftStore* drift, TargetFactory* targets,
                                 DeploymentScheduler* scheduler, DeploymentRunner* runner, DriftPolicy* policy,
                                 DeployerMetrics* metrics, const Clock* clock, absl::Duration list_refresh)
    : records_(records),
      drift_(drift),
      targets_(targets),
      scheduler_(scheduler),
      runner_(runner),
      policy_(policy),
      metrics_(metrics),
      clock_(clock),
      list_refresh_(list_refresh) {}

Target* DriftController::TargetsByConfig::For(const v1::DeployTarget& config) {
  std::string key = config.SerializeAsString();
  auto it = by_config_.find(key);
  if (it == by_config_.end()) {
    absl::StatusOr<Target*> target = targets_->For(config);
    it = by_config_.emplace(std::move(key), target.ok() ? *target : nullptr).first;
  }
  return it->second;
}

absl::StatusOr<std::shared_ptr<const DriftController::Listed>> DriftController::ListManaged(bool force) {
  ferry::MutexLock l(&list_mu_);
  // Issue #23: re-reading (and parsing) every managed application at each
  // tick cost more than the checks themselves at 10,000 applications.
  if (force || !listed_at_ || clock_->Now() - *listed_at_ >= list_refresh_) {
    ASSIGN_OR_RETURN(std::vector<ManagedApp> apps, records_->ManagedApps());
    auto listed = std::make_shared<Listed>();
    // Applications of one environment share its target: each distinct
    // configuration is resolved once.
    TargetsByConfig resolved(targets_);
    for (const ManagedApp& app : apps) {
      listed->keys.push_back(AppKey(app.application_id, app.environment_id));
      listed->targets.push_back(resolved.For(app.target));
    }
    listed->apps = std::move(apps);
    listed_ = std::move(listed);
    listed_at_ = clock_->Now();
  }
  return listed_;
}

void DriftController::DriftPass(bool force) {
  absl::StatusOr<std::shared_ptr<const Listed>> listed = ListManaged(force);
  if (!listed.ok()) return;
  const Listed& list = **listed;
  std::vector<size_t> due_at, not_due;
  {
    ferry::MutexLock l(&mu_);
    const absl::Time now = clock_->Now();
    for (size_t i = 0; i < list.apps.size(); ++i) {
      auto it = next_check_.find(list.keys[i]);
      if (force || it == next_check_.end() || now >= it->second) due_at.push_back(i);
      else if (list.targets[i] != nullptr) not_due.push_back(i);
    }
  }
  for (size_t i : not_due) {
    if (scheduler_->stopping()) return;
    // Not due by the interval: due anyway when the target saw someone
    // change one of the application's objects (a watch), so drift shows
    // within moments instead of at the next interval.
    const ManagedApp& app = list.apps[i];
    if (list.targets[i]->TakeChanged(AppScope{app.application_id, app.environment_id})) due_at.push_back(i);
  }
  std::sort(due_at.begin(), due_at.end());  // in the list's order
  std::vector<const ManagedApp*> due;
  for (size_t i : due_at) due.push_back(&list.apps[i]);
  if (due.empty()) return;
  // Settings are read only when an application is due: the global ones
  // once per pass, the applications' own with their records.
  absl::StatusOr<std::optional<v1::DriftSettings>> global = policy_->StoredGlobal();
  if (!global.ok()) {
    logging::Warn("cannot read the global drift settings; skipping this pass", {{"error", global.status().ToString()}});
    return;
  }
  // The due applications' targets as read (a deployment may have changed
  // one since the list was read), each configuration resolved once a pass.
  TargetsByConfig targets(targets_);
  // Issue #23: the due applications' records, settings and applied objects
  // in one read per kReadBatch of them, not one read (and a lock taken and
  // released: three round trips) per application, 333 a second for 10,000
  // applications at a 30 s interval.
  for (size_t first = 0; first < due.size(); first += kReadBatch) {
    const size_t end = std::min(due.size(), first + kReadBatch);
    std::vector<std::pair<std::string, std::string>> ids;
    for (size_t i = first; i < end; ++i) ids.emplace_back(due[i]->application_id, due[i]->environment_id);
    absl::StatusOr<std::vector<DriftStore::DriftCheckInputs>> read = drift_->ReadDriftCheckInputsOf(ids);
    if (!read.ok()) {
      // Not checked this pass: their settings may turn healing off.
      logging::Warn("cannot read drift check inputs; skipping this pass", {{"error", read.status().ToString()}});
      return;
    }
    std::map<std::string, const DriftStore::DriftCheckInputs*> by_key;
    for (const DriftStore::DriftCheckInputs& in : *read) {
      by_key.emplace(AppKey(in.app->application_id, in.app->environment_id), &in);
    }
    for (size_t i = first; i < end; ++i) {
      if (scheduler_->stopping()) return;
      auto it = by_key.find(AppKey(due[i]->application_id, due[i]->environment_id));
      CheckDrift(*due[i], *global, it == by_key.end() ? nullptr : it->second, targets);
    }
  }
}

bool DriftController::InSync(const ManagedApp& app, const std::vector<AppliedObject>& applied, Target& target) {
  const AppScope scope{app.application_id, app.environment_id};
  std::vector<bool> healthy;
  for (const AppliedObject& a : applied) {
    ObservedObject o = target.ObserveStatus(scope, a.object.key, &a.object);
    if (o.drift == v1::DRIFT_STATUS_MODIFIED || o.drift == v1::DRIFT_STATUS_MISSING) return false;
    if (o.health != v1::HEALTH_STATUS_UNSPECIFIED) healthy.push_back(o.health == v1::HEALTH_STATUS_HEALTHY);
  }
  for (bool h : healthy) metrics_->HealthChecked(h);
  {
    ferry::MutexLock l(&mu_);
    active_drift_[AppKey(app.application_id, app.environment_id)].clear();
  }
  metrics_->DriftedObjects(app.application_id, app.environment_id, 0);
  return true;
}

void DriftController::OrderAsApplied(const v1::Plan& live_spec, std::vector<TargetObject>& objects) {
  // The store lists applied objects by wave and key; within a wave the
  // target's own apply order (Prepare's: on Kubernetes a Namespace before
  // the objects in it) is the order the live deployment's spec holds.
  std::map<std::string, int> position;
  for (int i = 0; i < live_spec.manifests_size(); ++i) {
    position.emplace(ObjectKey::FromProto(live_spec.manifests(i).object()).ToString(), i);
  }
  auto rank = [&](const TargetObject& o) {
    auto it = position.find(o.key.ToString());
    return it == position.end() ? live_spec.manifests_size() : it->second;
  };
  std::stable_sort(objects.begin(), objects.end(), [&](const TargetObject& a, const TargetObject& b) {
    if (a.wave != b.wave) return a.wave < b.wave;
    return rank(a) < rank(b);
  });
}

void DriftController::CheckDrift(const ManagedApp& listed, const std::optional<v1::DriftSettings>& global,
                                 const DriftStore::DriftCheckInputs* read, TargetsByConfig& targets) {
  const std::string key = AppKey(listed.application_id, listed.environment_id);
  auto next_check_in = [&](absl::Duration interval) {
    ferry::MutexLock l(&mu_);
    next_check_[key] = clock_->Now() + interval;
  };
  if (read == nullptr) {  // no longer managed
    next_check_in(policy_->default_interval());
    return;
  }
  {
    // As read with the pass's other due applications: the application in
    // sync with what its live deployment applied is the whole check, and
    // needs no lock (it changes nothing). A deployment made since the read
    // either has not touched the target yet (then the target still is as
    // read) or shows as drift, which is looked at again below.
    const ManagedApp& app = *read->app;
    const absl::Duration interval = policy_->MergedInterval(global, read->own);
    {
      ferry::MutexLock l(&mu_);
      next_check_[key] = clock_->Now() + interval;
      interval_[key] = interval;
    }
    if (DriftPolicy::MergedDisabled(global, read->own)) return;
    // Another replica's environment (AppLocks::Owns): its owner checks it.
    if (!scheduler_->Owns(app.environment_id)) return;
    Target* target = targets.For(app.target);
    if (target == nullptr) return;
    if (InSync(app, read->applied, *target)) return;
  }
  // Drift, or what looks like it: checked again under the application's
  // lock, by its record as stored now.
  absl::StatusOr<std::unique_ptr<AppLock>> lock = scheduler_->TryLock(listed.application_id, listed.environment_id);
  if (!lock.ok() || !*lock) {
    // A deployment is running; look again after the application's interval.
    absl::Duration interval = policy_->default_interval();
    {
      ferry::MutexLock l(&mu_);
      if (auto it = interval_.find(key); it != interval_.end()) interval = it->second;
    }
    next_check_in(interval);
    return;
  }
  // The listed record may be older than the last deployment (the list is
  // kept for a while): its target, sync policy and live deployment are read
  // again under the lock, with its own settings and applied objects, in one
  // read.
  absl::StatusOr<DriftStore::DriftCheckInputs> inputs =
      drift_->ReadDriftCheckInputs(listed.application_id, listed.environment_id);
  if (!inputs.ok()) {
    // Not checked this pass: its settings may turn healing off.
    logging::Warn("cannot read drift settings; skipping the application this pass",
                  {{"application", listed.application_id},
                   {"environment", listed.environment_id},
                   {"error", inputs.status().ToString()}});
    return;
  }
  if (!inputs->app.has_value()) {  // no longer managed
    next_check_in(policy_->default_interval());
    return;
  }
  const ManagedApp& app = *inputs->app;
  const v1::DriftSettings settings = policy_->Merge(global, inputs->own, app.application_id, app.environment_id);
  next_check_in(FromProtoDuration(settings.interval()));
  {
    ferry::MutexLock l(&mu_);
    interval_[key] = FromProtoDuration(settings.interval());
  }
  if (settings.disabled()) return;
  absl::StatusOr<Target*> target = targets_->For(app.target);
  if (!target.ok()) return;
  const std::vector<AppliedObject>* applied = &inputs->applied;
  AppScope scope{app.application_id, app.environment_id};
  std::vector<TargetObject> heal;
  std::vector<int64_t> drift_ids;
  std::vector<std::string> drift_keys;
  Episodes still;
  Episodes known;
  {
    ferry::MutexLock l(&mu_);
    known = active_drift_[key];
  }
  for (const AppliedObject& a : *applied) {
    ObservedObject o = (*target)->Observe(scope, a.object.key, &a.object);
    if (o.health != v1::HEALTH_STATUS_UNSPECIFIED) metrics_->HealthChecked(o.health == v1::HEALTH_STATUS_HEALTHY);
    if (o.drift != v1::DRIFT_STATUS_MODIFIED && o.drift != v1::DRIFT_STATUS_MISSING) continue;
    std::string okey = a.object.key.ToString();
    auto it = known.find(okey);
    int64_t id = 0;
    if (it != known.end()) {
      id = it->second.second;  // Same drift episode: recorded already.
    } else {
      v1::Event e = AppEvent(v1::AUDIT_ACTION_DRIFT_DETECTED, app.application_id, app.environment_id, FerryActor(),
                             absl::StrCat(a.object.key.kind, " \"", a.object.key.name, "\" drifted (",
                                          v1::DriftStatus_Name(o.drift), "): ", o.drift_message),
                             absl::StrCat("drift/", key, "/", okey, "/", absl::ToUnixNanos(clock_->Now())),
                             {{"object", okey}, {"drift", v1::DriftStatus_Name(o.drift)}, {"deployment_id", a.deployment_id}});
      absl::StatusOr<int64_t> rec = drift_->RecordDrift(app.application_id, app.environment_id, okey, o.drift,
                                                        o.drift_message, {e});
      if (!rec.ok()) continue;
      id = *rec;
      metrics_->DriftDetected();
      logging::Warn("drift detected", {{"application", app.application_id},
                                       {"environment", app.environment_id},
                                       {"object", okey},
                                       {"drift", o.drift_message}});
    }
    still[okey] = {o.drift_message, id};
    if (app.sync_policy.self_heal() || o.repair_by_policy) {
      heal.push_back(a.object);
      drift_ids.push_back(id);
      drift_keys.push_back(okey);
    }
  }
  {
    ferry::MutexLock l(&mu_);
    active_drift_[key] = still;
  }
  metrics_->DriftedObjects(app.application_id, app.environment_id, still.size());
  if (heal.empty()) return;
  {
    ferry::MutexLock l(&mu_);
    auto it = heal_backoff_.find(key);
    if (it != heal_backoff_.end() && clock_->Now() < it->second.second) return;
  }
  // Heal: a SELF_HEAL deployment re-applying the drifted objects as last applied.
  v1::Plan spec;
  v1::Deployment live;
  if (!app.live_deployment_id.empty()) {
    absl::StatusOr<v1::Plan> live_spec = records_->GetSpec(app.live_deployment_id);
    if (live_spec.ok()) {
      *spec.mutable_health_timeout() = live_spec->health_timeout();
      OrderAsApplied(*live_spec, heal);
    }
    absl::StatusOr<v1::Deployment> d = records_->Get(app.live_deployment_id, false);
    if (d.ok()) live = *d;
  }
  *spec.mutable_target() = app.target;
  *spec.mutable_sync_policy() = app.sync_policy;
  for (const TargetObject& o : heal) {
    v1::Manifest* m = spec.add_manifests();
    *m->mutable_object() = o.key.ToProto();
    m->set_json(o.json);
    m->set_source_path(o.source_path);
    m->set_wave(o.wave);
  }
  v1::Deployment d;
  d.set_id(DeploymentRunner::NewId());
  d.set_application_id(app.application_id);
  d.set_environment_id(app.environment_id);
  d.set_kind(v1::DEPLOYMENT_KIND_SELF_HEAL);
  d.set_state(v1::DEPLOYMENT_STATE_PENDING);
  *d.mutable_revision() = live.revision();
  *d.mutable_previous_revision() = live.revision();
  d.set_manifests_digest(live.manifests_digest());
  *d.mutable_actor() = FerryActor();
  d.set_message(absl::StrCat("healing drift of ", absl::StrJoin(drift_keys, ", ")));
  *d.mutable_create_time() = ToTimestamp(clock_->Now());
  // Through the scheduler like any deployment, never on the caller's thread
  // (the maintenance loop): a slot, then a worker. The application's lock
  // taken for the observation goes with it, so nothing deploys in between.
  // Every slot taken: look again next pass.
  if (!scheduler_->TryReserveSlot(d.id())) return;
  if (!records_->Create(d, spec, {}).ok()) {
    scheduler_->ReleaseSlot(d.id());
    return;
  }
  std::shared_ptr<AppLock> held(std::move(*lock));
  scheduler_->Spawn(d.id(), [this, app, settings, d, spec, drift_ids, drift_keys, held] {
    Heal(app, settings, d, spec, drift_ids, drift_keys);
  });
}

void DriftController::Heal(const ManagedApp& app, const v1::DriftSettings& settings, const v1::Deployment& d,
                           const v1::Plan& spec, const std::vector<int64_t>& drift_ids,
                           const std::vector<std::string>& drift_keys) {
  absl::StatusOr<v1::Deployment> done = runner_->Run(d, spec);
  std::string key = AppKey(app.application_id, app.environment_id);
  ferry::MutexLock l(&mu_);
  if (done.ok() && done->state() == v1::DEPLOYMENT_STATE_SUCCEEDED) {
    std::vector<v1::Event> events;
    for (const std::string& okey : drift_keys) {
      events.push_back(AppEvent(v1::AUDIT_ACTION_DRIFT_HEALED, app.application_id, app.environment_id, FerryActor(),
                                absl::StrCat(okey, " restored to its last applied state by ", d.id()),
                                absl::StrCat("deployment/", d.id(), "/healed/", okey),
                                {{"object", okey}, {"deployment_id", d.id()}}));
    }
    (void)drift_->MarkDriftHealed(drift_ids, d.id(), events);
    heal_backoff_.erase(key);
    for (const std::string& okey : drift_keys) active_drift_[key].erase(okey);
    metrics_->DriftedObjects(app.application_id, app.environment_id, active_drift_[key].size());
    logging::Info("drift healed", {{"application", app.application_id}, {"deployment", d.id()}});
  } else {
    auto& [failures, not_before] = heal_backoff_[key];
    const v1::Backoff& b = settings.heal_backoff();
    concurrency::BackoffPolicy policy;
    policy.initial = FromProtoDuration(b.initial());
    policy.max = FromProtoDuration(b.max());
    policy.factor = b.factor();
    ++failures;
    absl::Duration delay = concurrency::BackoffDelay(policy, failures);
    not_before = clock_->Now() + delay;
    logging::Warn("drift heal failed; backing off",
                  {{"application", app.application_id}, {"delay", absl::FormatDuration(delay)},
                   {"error", done.ok() ? done->message() : done.status().ToString()}});
  }
}

}  // namespace ferry::deployer
