#include "services/deployer/deployer.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging/logger.h"
#include "services/deployer/audit_events.h"
#include "services/deployer/plan_intake.h"

namespace ferry::deployer {
namespace {

bool IsTerminal(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_SUCCEEDED || s == v1::DEPLOYMENT_STATE_FAILED ||
         s == v1::DEPLOYMENT_STATE_ROLLED_BACK;
}

std::string AppKey(const std::string& app, const std::string& env) { return app + "/" + env; }

absl::Duration FromProto(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Duration ToProto(absl::Duration d) {
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

absl::Status RequireIds(const std::string& app, const std::string& env) {
  if (app.empty()) return absl::InvalidArgumentError("application_id is required");
  if (env.empty()) return absl::InvalidArgumentError("environment_id is required");
  return absl::OkStatus();
}

int HealthRank(v1::HealthStatus h) {
  switch (h) {
    case v1::HEALTH_STATUS_HEALTHY: return 0;
    case v1::HEALTH_STATUS_PROGRESSING: return 1;
    case v1::HEALTH_STATUS_UNKNOWN: return 2;
    case v1::HEALTH_STATUS_MISSING: return 3;
    case v1::HEALTH_STATUS_DEGRADED: return 4;
    default: return 2;
  }
}

}  // namespace

Deployer::Deployer(DeploymentStore* store, TargetFactory* targets, PlanSource* plans, DeploymentNotifier* notifier,
                   DeployerMetrics* metrics, const Clock* clock, DeployerOptions options, FetcherFactory fetchers)
    : store_(store),
      targets_(targets),
      plans_(plans),
      notifier_(notifier),
      metrics_(metrics),
      clock_(clock),
      options_(options),
      fetchers_(std::move(fetchers)),
      runner_(store, targets, notifier, metrics, clock, [&] {
        RunnerOptions r = options.runner;
        r.deployer_id = options.deployer_id;
        return r;
      }()) {}

Deployer::~Deployer() { Stop(); }

void Deployer::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_) return;
    started_ = true;
  }
  RecoverOrphans();
  if (plans_ != nullptr) plan_thread_ = std::thread([this] { PlanLoop(); });
  maintenance_thread_ = std::thread([this] { MaintenanceLoop(); });
}

void Deployer::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  runner_.Stop();
  if (plans_ != nullptr) plans_->Cancel();
  if (plan_thread_.joinable()) plan_thread_.join();
  if (maintenance_thread_.joinable()) maintenance_thread_.join();
  std::vector<Worker> workers;
  {
    std::lock_guard<std::mutex> l(mu_);
    workers.swap(workers_);
  }
  for (Worker& w : workers) w.thread.join();
}

bool Deployer::ReserveSlot(const std::string& deployment_id) {
  std::unique_lock<std::mutex> l(mu_);
  // Bounded: beyond max_concurrent_deployments the caller (the plan intake)
  // waits, instead of every deployment of a large commit running, and
  // reporting to the planner, at once. The id counts as in flight from here
  // on, so that orphan recovery never takes a deployment that is about to
  // start.
  cv_.wait(l, [&] { return stopping_ || static_cast<int>(in_flight_.size()) < options_.max_concurrent_deployments; });
  if (stopping_) return false;
  in_flight_.insert(deployment_id);
  return true;
}

void Deployer::ReleaseSlot(const std::string& deployment_id) {
  std::lock_guard<std::mutex> l(mu_);
  in_flight_.erase(deployment_id);
  cv_.notify_all();
}

void Deployer::Spawn(const std::string& deployment_id, std::function<void()> fn) {
  std::vector<Worker> finished;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (stopping_) {
      in_flight_.erase(deployment_id);
      cv_.notify_all();
      return;
    }
    // Reap the workers that have finished; joined below, without mu_ (a
    // finishing worker may still need it, e.g. to release an app lock).
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        finished.push_back(std::move(*it));
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    in_flight_.insert(deployment_id);
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread t([this, deployment_id, done, fn = std::move(fn)] {
      fn();
      std::lock_guard<std::mutex> l(mu_);
      in_flight_.erase(deployment_id);
      done->store(true);
      cv_.notify_all();
    });
    workers_.push_back(Worker{std::move(t), done});
  }
  for (Worker& w : finished) w.thread.join();
}

void Deployer::WaitIdle() {
  std::unique_lock<std::mutex> l(mu_);
  cv_.wait(l, [&] { return in_flight_.empty(); });
}

namespace {

// A lock that calls `released` once it has been released.
class NotifyingLock final : public AppLock {
 public:
  NotifyingLock(std::unique_ptr<AppLock> inner, std::function<void()> released)
      : inner_(std::move(inner)), released_(std::move(released)) {}
  ~NotifyingLock() override {
    inner_.reset();
    released_();
  }

 private:
  std::unique_ptr<AppLock> inner_;
  std::function<void()> released_;
};

constexpr std::chrono::milliseconds kLockRetry(200);

}  // namespace

absl::StatusOr<std::unique_ptr<AppLock>> Deployer::TryLock(const std::string& app, const std::string& env) {
  absl::StatusOr<std::unique_ptr<AppLock>> lock = store_->TryLock(app, env);
  if (!lock.ok() || *lock == nullptr) return lock;
  return std::unique_ptr<AppLock>(std::make_unique<NotifyingLock>(std::move(*lock), [this] {
    {
      std::lock_guard<std::mutex> l(mu_);
      ++lock_releases_;
    }
    cv_.notify_all();
  }));
}

std::unique_ptr<AppLock> Deployer::AcquireLock(const std::string& app, const std::string& env) {
  while (true) {
    uint64_t seen;
    {
      std::lock_guard<std::mutex> l(mu_);
      seen = lock_releases_;
    }
    absl::StatusOr<std::unique_ptr<AppLock>> lock = TryLock(app, env);
    if (lock.ok() && *lock) return std::move(*lock);
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, kLockRetry, [&] { return stopping_ || lock_releases_ != seen; }) && stopping_) return nullptr;
  }
}

void Deployer::PlanLoop() {
  absl::Duration backoff = options_.plan_retry;
  while (true) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    absl::StatusOr<std::string> cursor = store_->GetCursor();
    absl::Status s = cursor.status();
    if (cursor.ok()) {
      // Plans are handed off several at a time (one at a time per
      // application and environment); the saved cursor only moves over
      // plans whose hand-off finished.
      PlanIntake intake(options_.intake_concurrency, [&](const std::string& position) {
        absl::Status saved = store_->SaveCursor(position);
        if (!saved.ok()) logging::Warn("cannot save plan cursor", {{"error", saved.ToString()}});
      });
      s = plans_->Watch(*cursor, [&](const std::string& next, const v1::Plan& plan) {
        std::string key = plan.application_id() + "/" + plan.environment_id();
        return intake.Submit(key, next, [this, plan] { return TakePlan(plan); });
      });
      absl::Status intake_failure = intake.Drain();
      if (intake_failure.ok()) backoff = options_.plan_retry;
    }
    std::unique_lock<std::mutex> l(mu_);
    if (stopping_) return;
    logging::Info("plan stream ended; reconnecting", {{"status", s.ToString()}});
    cv_.wait_for(l, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; });
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

void Deployer::MaintenanceLoop() {
  while (true) {
    {
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, absl::ToChronoMilliseconds(options_.tick), [&] { return stopping_; })) return;
    }
    RecoverOrphans();
    ReportOutcomes();
    DriftPass(false);
  }
}

absl::Status Deployer::TakePlan(const v1::Plan& plan) {
  absl::Duration backoff = options_.plan_retry;
  for (;;) {
    absl::StatusOr<std::string> handled = HandlePlan(plan);
    if (handled.ok()) return absl::OkStatus();
    absl::StatusCode code = handled.status().code();
    // A malformed plan will never be taken: skip it rather than block the stream.
    if (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition) {
      logging::Warn("plan skipped", {{"plan", plan.id()}, {"error", handled.status().ToString()}});
      return absl::OkStatus();
    }
    logging::Warn("plan not taken; retrying",
                  {{"plan", plan.id()}, {"error", handled.status().ToString()}, {"retry_in", absl::FormatDuration(backoff)}});
    std::unique_lock<std::mutex> l(mu_);
    if (cv_.wait_for(l, absl::ToChronoMilliseconds(backoff), [&] { return stopping_; })) {
      return handled.status();  // Delivered again from the saved cursor after a restart.
    }
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

absl::StatusOr<std::string> Deployer::HandlePlan(const v1::Plan& plan) {
  if (plan.id().empty()) return absl::InvalidArgumentError("plan.id is required");
  absl::Status ids = RequireIds(plan.application_id(), plan.environment_id());
  if (!ids.ok()) return ids;
  std::string id = "dep-" + plan.id();
  absl::StatusOr<v1::Deployment> existing = store_->Get(id, false);
  if (existing.ok()) return id;  // Redelivered: already recorded (and recovered or reported from there).
  if (existing.status().code() != absl::StatusCode::kNotFound) return existing.status();
  absl::StatusOr<v1::PinState> pin = store_->GetPin(plan.application_id(), plan.environment_id());
  if (!pin.ok()) return pin.status();
  if (pin->pinned() && plan.decision().automatic() && plan.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    logging::Info("skipping automatically approved plan: application is pinned",
                  {{"plan", plan.id()}, {"application", plan.application_id()}, {"pinned_sha", pin->sha()}});
    return std::string();
  }
  if (plans_ != nullptr) {
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(plan.id());
    ack.set_deployment_id(id);
    ack.set_deployer_id(options_.deployer_id);
    absl::StatusOr<v1::AcknowledgePlanResponse> resp = plans_->Acknowledge(ack);
    if (!resp.ok()) return resp.status();
    if (!resp->proceed()) {
      logging::Info("planner declined plan", {{"plan", plan.id()}, {"reason", resp->reason()}});
      return std::string();
    }
  }
  v1::Deployment d;
  d.set_id(id);
  d.set_application_id(plan.application_id());
  d.set_environment_id(plan.environment_id());
  d.set_plan_id(plan.id());
  d.set_kind(plan.trigger() == v1::PLAN_TRIGGER_ROLLBACK ? v1::DEPLOYMENT_KIND_ROLLBACK : v1::DEPLOYMENT_KIND_ROLLOUT);
  d.set_state(v1::DEPLOYMENT_STATE_PENDING);
  *d.mutable_revision() = plan.target_revision();
  *d.mutable_previous_revision() = plan.source_revision();
  d.set_manifests_digest(plan.manifests_digest());
  if (plan.has_decision() && !plan.decision().actor().id().empty()) {
    *d.mutable_actor() = plan.decision().actor();
  } else if (!plan.requested_by().id().empty()) {
    *d.mutable_actor() = plan.requested_by();
  } else {
    *d.mutable_actor() = FerryActor();
  }
  d.set_restored_deployment_id(plan.rollback_to_deployment_id());
  *d.mutable_create_time() = ToTimestamp(clock_->Now());
  absl::StatusOr<v1::Deployment> started = StartDeployment(d, plan);
  if (!started.ok()) return started.status();
  return id;
}

absl::StatusOr<v1::Deployment> Deployer::StartDeployment(v1::Deployment d, const v1::Plan& plan) {
  // Check and resolve every object before anything changes.
  v1::Plan spec = plan;
  std::string refused;
  absl::StatusOr<Target*> target = targets_->For(plan.target());
  if (!target.ok()) {
    refused = std::string(target.status().message());
  } else {
    FileFetcher fetch = fetchers_ ? fetchers_(plan) : FileFetcher();
    absl::StatusOr<std::vector<TargetObject>> prepared =
        (*target)->Prepare(AppScope{d.application_id(), d.environment_id()}, DeploymentRunner::ObjectsOf(plan), fetch);
    if (!prepared.ok()) {
      if (prepared.status().code() == absl::StatusCode::kUnavailable) return prepared.status();
      refused = std::string(prepared.status().message());
    } else {
      spec.clear_manifests();
      for (const TargetObject& o : *prepared) {
        v1::Manifest* m = spec.add_manifests();
        *m->mutable_object() = o.key.ToProto();
        m->set_json(o.json);
        m->set_source_path(o.source_path);
        m->set_wave(o.wave);
      }
    }
  }
  if (!ReserveSlot(d.id())) return absl::UnavailableError("the deployer is stopping");
  absl::Status s = store_->Create(d, spec, {});
  if (!s.ok()) {
    ReleaseSlot(d.id());
    return s;
  }
  if (!refused.empty()) {
    ReleaseSlot(d.id());
    absl::StatusOr<v1::Deployment> out = runner_.RecordRefused(d, spec, refused);
    ReportOutcomes();
    return out;
  }
  Spawn(d.id(), [this, d, spec] { Execute(d, spec); });
  return d;
}

void Deployer::Execute(v1::Deployment d, v1::Plan spec) {
  std::unique_ptr<AppLock> lock = AcquireLock(d.application_id(), d.environment_id());
  if (!lock) return;
  // Re-read: another replica may have run it while we waited.
  absl::StatusOr<v1::Deployment> current = store_->Get(d.id(), false);
  if (!current.ok() || current->state() != v1::DEPLOYMENT_STATE_PENDING) return;
  absl::StatusOr<v1::Deployment> done = runner_.Run(*current, spec);
  if (!done.ok()) {
    logging::Warn("deployment interrupted", {{"deployment", d.id()}, {"error", done.status().ToString()}});
    return;
  }
  lock.reset();
  ReportOutcomes();
}

void Deployer::RecoverOrphans() {
  absl::StatusOr<std::vector<v1::Deployment>> unfinished = store_->Unfinished();
  if (!unfinished.ok()) {
    logging::Warn("cannot list unfinished deployments", {{"error", unfinished.status().ToString()}});
    return;
  }
  // One per application: an unfinished automatic rollback first (it
  // settles the deployment it rolls back), otherwise the oldest.
  std::map<std::string, v1::Deployment> chosen;
  for (const v1::Deployment& d : *unfinished) {
    std::string key = AppKey(d.application_id(), d.environment_id());
    auto it = chosen.find(key);
    if (it == chosen.end()) {
      chosen.emplace(key, d);
    } else if (d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK &&
               it->second.kind() != v1::DEPLOYMENT_KIND_AUTO_ROLLBACK) {
      it->second = d;
    }
  }
  for (const auto& [key, d] : chosen) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_ || in_flight_.count(d.id())) continue;
    }
    absl::StatusOr<std::unique_ptr<AppLock>> lock = TryLock(d.application_id(), d.environment_id());
    if (!lock.ok() || !*lock) continue;  // Its holder is alive (here or elsewhere).
    std::shared_ptr<AppLock> held(std::move(*lock));
    // Not bounded by max_concurrent_deployments: it holds its application's
    // lock already (a running deployment may be waiting for that lock).
    Spawn(d.id(), [this, d, held] {
      absl::StatusOr<v1::Deployment> current = store_->Get(d.id(), false);
      if (!current.ok() || IsTerminal(current->state())) return;
      absl::StatusOr<v1::Plan> spec = store_->GetSpec(d.id());
      if (!spec.ok()) return;
      logging::Info("recovering deployment", {{"deployment", d.id()}, {"state", v1::DeploymentState_Name(current->state())}});
      absl::StatusOr<v1::Deployment> done = runner_.Recover(*current, *spec);
      if (!done.ok()) {
        logging::Warn("recovery interrupted", {{"deployment", d.id()}, {"error", done.status().ToString()}});
        return;
      }
      ReportOutcomes();
    });
  }
}

void Deployer::ReportOutcomes() {
  if (plans_ == nullptr) return;
  // One reporter at a time: every finished deployment asks for a report, and
  // concurrent passes would report the same outcomes several times over.
  // A request made while a pass runs makes that pass run once more.
  {
    std::lock_guard<std::mutex> l(report_mu_);
    if (reporting_) {
      report_again_ = true;
      return;
    }
    reporting_ = true;
  }
  for (;;) {
    ReportOutcomesOnce();
    std::lock_guard<std::mutex> l(report_mu_);
    if (!report_again_) {
      reporting_ = false;
      return;
    }
    report_again_ = false;
  }
}

void Deployer::ReportOutcomesOnce() {
  absl::StatusOr<std::vector<v1::Deployment>> pending = store_->Unreported();
  if (!pending.ok()) return;
  for (const v1::Deployment& d : *pending) {
    v1::ReportPlanResultRequest req;
    req.set_plan_id(d.plan_id());
    req.set_deployment_id(d.id());
    req.set_message(d.message());
    switch (d.state()) {
      case v1::DEPLOYMENT_STATE_SUCCEEDED:
        req.set_state(v1::PLAN_STATE_SUCCEEDED);
        *req.mutable_live_revision() = d.revision();
        break;
      case v1::DEPLOYMENT_STATE_ROLLED_BACK: {
        req.set_state(v1::PLAN_STATE_ROLLED_BACK);
        absl::StatusOr<v1::Deployment> by = store_->Get(d.rolled_back_by_deployment_id(), false);
        if (by.ok()) *req.mutable_live_revision() = by->revision();
        break;
      }
      default:
        req.set_state(v1::PLAN_STATE_FAILED);
        *req.mutable_live_revision() = d.previous_revision();
        break;
    }
    absl::Status s = plans_->ReportResult(req);
    if (s.ok() || s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kFailedPrecondition) {
      (void)store_->MarkReported(d.id());
    } else {
      logging::Warn("cannot report plan result; will retry", {{"plan", d.plan_id()}, {"error", s.ToString()}});
      return;
    }
  }
}

absl::StatusOr<v1::DriftSettings> Deployer::EffectiveSettings(const std::string& app, const std::string& env) {
  // Nothing stored means the defaults; a failed read is an error (defaults
  // would heal an application whose operator turned healing off).
  v1::DriftSettings out;
  absl::StatusOr<v1::DriftSettings> global = store_->GetDriftSettings("", "");
  if (global.ok()) {
    out = *global;
  } else if (!absl::IsNotFound(global.status())) {
    return global.status();
  }
  absl::StatusOr<v1::DriftSettings> own = store_->GetDriftSettings(app, env);
  if (!own.ok() && !absl::IsNotFound(own.status())) return own.status();
  if (own.ok()) {
    if (own->disabled()) out.set_disabled(true);
    if (own->has_interval()) *out.mutable_interval() = own->interval();
    if (own->has_heal_backoff()) *out.mutable_heal_backoff() = own->heal_backoff();
  }
  out.set_application_id(app);
  out.set_environment_id(env);
  if (!out.has_interval()) *out.mutable_interval() = ToProto(options_.drift_interval);
  if (!out.heal_backoff().has_initial()) *out.mutable_heal_backoff()->mutable_initial() = ToProto(absl::Seconds(5));
  if (!out.heal_backoff().has_max()) *out.mutable_heal_backoff()->mutable_max() = ToProto(absl::Minutes(5));
  if (out.heal_backoff().factor() <= 0) out.mutable_heal_backoff()->set_factor(2);
  return out;
}

void Deployer::DriftPass(bool force) {
  absl::StatusOr<std::vector<ManagedApp>> apps = store_->ManagedApps();
  if (!apps.ok()) return;
  for (const ManagedApp& app : *apps) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stopping_) return;
    }
    std::string key = AppKey(app.application_id, app.environment_id);
    {
      std::lock_guard<std::mutex> l(drift_mu_);
      auto it = next_drift_check_.find(key);
      if (!force && it != next_drift_check_.end() && clock_->Now() < it->second) continue;
    }
    // Settings are read only when the application is due.
    absl::StatusOr<v1::DriftSettings> settings = EffectiveSettings(app.application_id, app.environment_id);
    if (!settings.ok()) {
      // Not checked this pass: its settings may turn healing off.
      logging::Warn("cannot read drift settings; skipping the application this pass",
                    {{"application", app.application_id},
                     {"environment", app.environment_id},
                     {"error", settings.status().ToString()}});
      continue;
    }
    {
      std::lock_guard<std::mutex> l(drift_mu_);
      next_drift_check_[key] = clock_->Now() + FromProto(settings->interval());
    }
    if (settings->disabled()) continue;
    CheckDrift(app, *settings);
  }
}

void Deployer::CheckDrift(const ManagedApp& app, const v1::DriftSettings& settings) {
  absl::StatusOr<std::unique_ptr<AppLock>> lock = TryLock(app.application_id, app.environment_id);
  if (!lock.ok() || !*lock) return;  // A deployment is running; look next time.
  absl::StatusOr<Target*> target = targets_->For(app.target);
  if (!target.ok()) return;
  absl::StatusOr<std::vector<AppliedObject>> applied = store_->Applied(app.application_id, app.environment_id);
  if (!applied.ok()) return;
  AppScope scope{app.application_id, app.environment_id};
  std::string key = AppKey(app.application_id, app.environment_id);
  std::vector<TargetObject> heal;
  std::vector<int64_t> drift_ids;
  std::vector<std::string> drift_keys;
  std::map<std::string, std::pair<std::string, int64_t>> still;
  std::map<std::string, std::pair<std::string, int64_t>> known;
  {
    std::lock_guard<std::mutex> l(drift_mu_);
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
      absl::StatusOr<int64_t> rec = store_->RecordDrift(app.application_id, app.environment_id, okey, o.drift,
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
    std::lock_guard<std::mutex> l(drift_mu_);
    active_drift_[key] = still;
  }
  if (heal.empty()) return;
  {
    std::lock_guard<std::mutex> l(drift_mu_);
    auto it = heal_backoff_.find(key);
    if (it != heal_backoff_.end() && clock_->Now() < it->second.second) return;
  }
  // Heal: a SELF_HEAL deployment re-applying the drifted objects as last applied.
  v1::Plan spec;
  v1::Deployment live;
  if (!app.live_deployment_id.empty()) {
    absl::StatusOr<v1::Plan> live_spec = store_->GetSpec(app.live_deployment_id);
    if (live_spec.ok()) *spec.mutable_health_timeout() = live_spec->health_timeout();
    absl::StatusOr<v1::Deployment> d = store_->Get(app.live_deployment_id, false);
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
  if (!store_->Create(d, spec, {}).ok()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.insert(d.id());
  }
  absl::StatusOr<v1::Deployment> done = runner_.Run(d, spec);
  {
    std::lock_guard<std::mutex> l(mu_);
    in_flight_.erase(d.id());
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> l(drift_mu_);
  if (done.ok() && done->state() == v1::DEPLOYMENT_STATE_SUCCEEDED) {
    std::vector<v1::Event> events;
    for (const std::string& okey : drift_keys) {
      events.push_back(AppEvent(v1::AUDIT_ACTION_DRIFT_HEALED, app.application_id, app.environment_id, FerryActor(),
                                absl::StrCat(okey, " restored to its last applied state by ", d.id()),
                                absl::StrCat("deployment/", d.id(), "/healed/", okey),
                                {{"object", okey}, {"deployment_id", d.id()}}));
    }
    (void)store_->MarkDriftHealed(drift_ids, d.id(), events);
    heal_backoff_.erase(key);
    for (const std::string& okey : drift_keys) active_drift_[key].erase(okey);
    logging::Info("drift healed", {{"application", app.application_id}, {"deployment", d.id()}});
  } else {
    auto& [failures, not_before] = heal_backoff_[key];
    const v1::Backoff& b = settings.heal_backoff();
    absl::Duration delay = FromProto(b.initial());
    for (int i = 0; i < failures && delay < FromProto(b.max()); ++i) delay = delay * b.factor();
    delay = std::min(delay, FromProto(b.max()));
    ++failures;
    not_before = clock_->Now() + delay;
    logging::Warn("drift heal failed; backing off",
                  {{"application", app.application_id}, {"delay", absl::FormatDuration(delay)},
                   {"error", done.ok() ? done->message() : done.status().ToString()}});
  }
}

absl::StatusOr<v1::Deployment> Deployer::GetDeployment(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("deployment_id is required");
  return store_->Get(id, true);
}

absl::StatusOr<v1::ListDeploymentsResponse> Deployer::ListDeployments(const v1::ListDeploymentsRequest& req) {
  if (req.page_size() < 0 || req.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size must be between 0 and 1000");
  }
  DeploymentFilter f;
  f.application_id = req.application_id();
  f.environment_id = req.environment_id();
  for (int s : req.states()) f.states.push_back(static_cast<v1::DeploymentState>(s));
  f.include_steps = req.include_steps();
  f.page_size = req.page_size() == 0 ? 50 : req.page_size();
  if (!req.page_token().empty() && (!absl::SimpleAtoi(req.page_token(), &f.after_seq) || f.after_seq <= 0)) {
    return absl::InvalidArgumentError("page_token is not a token from a previous response");
  }
  absl::StatusOr<DeploymentPage> page = store_->List(f);
  if (!page.ok()) return page.status();
  v1::ListDeploymentsResponse out;
  for (v1::Deployment& d : page->deployments) *out.add_deployments() = std::move(d);
  if (page->next_seq != 0) out.set_next_page_token(absl::StrCat(page->next_seq));
  return out;
}

absl::StatusOr<v1::RollbackResponse> Deployer::Rollback(const v1::RollbackRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  absl::StatusOr<std::optional<ManagedApp>> managed = store_->GetManagedApp(req.application_id(), req.environment_id());
  if (!managed.ok()) return managed.status();
  if (!managed->has_value() || (*managed)->live_deployment_id.empty()) {
    return absl::FailedPreconditionError("application has no successful deployment in this environment");
  }
  absl::StatusOr<v1::Deployment> live = store_->Get((*managed)->live_deployment_id, false);
  if (!live.ok()) return live.status();
  absl::StatusOr<std::vector<v1::Deployment>> good = store_->Succeeded(req.application_id(), req.environment_id());
  if (!good.ok()) return good.status();
  std::optional<v1::Deployment> target;
  if (req.target_case() == v1::RollbackRequest::kDeploymentId) {
    for (const v1::Deployment& g : *good) {
      if (g.id() == req.deployment_id()) target = g;
    }
    if (!target) {
      return absl::FailedPreconditionError(
          absl::StrCat("deployment_id: \"", req.deployment_id(), "\" is not a successful deployment of this application"));
    }
  } else if (req.target_case() == v1::RollbackRequest::kSha) {
    for (const v1::Deployment& g : *good) {
      if (g.revision().sha() == req.sha()) {
        target = g;
        break;
      }
    }
    if (!target) {
      return absl::FailedPreconditionError(absl::StrCat("sha: no successful deployment deployed ", req.sha()));
    }
  } else {
    bool past_live = false;
    for (const v1::Deployment& g : *good) {
      if (g.id() == live->id()) {
        past_live = true;
        continue;
      }
      if (past_live && g.manifests_digest() != live->manifests_digest()) {
        target = g;
        break;
      }
    }
    if (!target) return absl::FailedPreconditionError("no earlier successful deployment to roll back to");
  }
  if (target->id() == live->id() ||
      (target->manifests_digest() == live->manifests_digest() && target->revision().sha() == live->revision().sha())) {
    return absl::FailedPreconditionError(absl::StrCat("deployment ", target->id(), " is already live"));
  }
  v1::RollbackResponse out;
  std::string deployment_id;
  bool via_planner = false;
  if (plans_ != nullptr) {
    v1::PlanRevisionRequest pr;
    pr.set_application_id(req.application_id());
    pr.set_environment_id(req.environment_id());
    pr.mutable_revision()->set_sha(target->revision().sha());
    pr.set_trigger(v1::PLAN_TRIGGER_ROLLBACK);
    *pr.mutable_actor() = req.actor();
    pr.set_comment(req.comment());
    pr.set_approve(true);
    pr.set_rollback_to_deployment_id(target->id());
    absl::StatusOr<v1::PlanRevisionResponse> planned = plans_->PlanRevision(pr);
    if (planned.ok()) {
      if (planned->up_to_date()) return absl::FailedPreconditionError("the planner finds nothing to change: already live");
      via_planner = true;
      out.set_plan_id(planned->plan().id());
      absl::StatusOr<std::string> id = HandlePlan(planned->plan());
      if (!id.ok()) return id.status();
      deployment_id = *id;
    } else if (planned.status().code() != absl::StatusCode::kUnavailable &&
               planned.status().code() != absl::StatusCode::kDeadlineExceeded &&
               planned.status().code() != absl::StatusCode::kUnimplemented) {
      return planned.status();
    }
  }
  if (!via_planner) {
    // The planner cannot be reached: restore the stored manifests directly.
    absl::StatusOr<v1::Plan> spec = store_->GetSpec(target->id());
    if (!spec.ok()) return spec.status();
    v1::Deployment d;
    d.set_id(DeploymentRunner::NewId());
    d.set_application_id(req.application_id());
    d.set_environment_id(req.environment_id());
    d.set_kind(v1::DEPLOYMENT_KIND_ROLLBACK);
    d.set_state(v1::DEPLOYMENT_STATE_PENDING);
    *d.mutable_revision() = target->revision();
    *d.mutable_previous_revision() = live->revision();
    d.set_manifests_digest(target->manifests_digest());
    *d.mutable_actor() = req.actor();
    d.set_restored_deployment_id(target->id());
    d.set_message(req.comment());
    *d.mutable_create_time() = ToTimestamp(clock_->Now());
    if (!ReserveSlot(d.id())) return absl::UnavailableError("the deployer is stopping");
    absl::Status s = store_->Create(d, *spec, {});
    if (!s.ok()) {
      ReleaseSlot(d.id());
      return s;
    }
    Spawn(d.id(), [this, d, spec = *spec] { Execute(d, spec); });
    deployment_id = d.id();
  }
  v1::PinState pin;
  pin.set_application_id(req.application_id());
  pin.set_environment_id(req.environment_id());
  pin.set_pinned(true);
  pin.set_sha(target->revision().sha());
  *pin.mutable_actor() = req.actor();
  pin.set_reason(req.comment().empty() ? "rollback" : req.comment());
  *pin.mutable_time() = ToTimestamp(clock_->Now());
  pin.set_deployment_id(deployment_id);
  absl::Status s = store_->SavePin(
      pin, {AppEvent(v1::AUDIT_ACTION_PINNED, req.application_id(), req.environment_id(), req.actor(),
                     absl::StrCat("rolled back to ", pin.sha(), " and pinned: ", pin.reason()),
                     // Not the deployment alone: a rollback the planner holds
                     // (sync window) has none yet, and every such rollback
                     // had the key "rollback//pinned".
                     absl::StrCat("rollback/", AppKey(req.application_id(), req.environment_id()), "/",
                                  via_planner ? out.plan_id() : deployment_id, "/pinned/",
                                  absl::ToUnixNanos(clock_->Now())),
                     {{"sha", pin.sha()}, {"deployment_id", deployment_id}, {"restored", target->id()}})});
  if (!s.ok()) return s;
  *out.mutable_pin() = pin;
  if (!deployment_id.empty()) {
    absl::StatusOr<v1::Deployment> d = store_->Get(deployment_id, false);
    if (d.ok()) *out.mutable_deployment() = *d;
  }
  return out;
}

absl::StatusOr<v1::PinState> Deployer::Pin(const v1::PinRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  std::string sha = req.sha();
  if (sha.empty()) {
    absl::StatusOr<std::optional<ManagedApp>> m = store_->GetManagedApp(req.application_id(), req.environment_id());
    if (!m.ok()) return m.status();
    if (!m->has_value() || (*m)->live_deployment_id.empty()) {
      return absl::FailedPreconditionError("sha: the application has no live revision to pin; give a sha");
    }
    absl::StatusOr<v1::Deployment> live = store_->Get((*m)->live_deployment_id, false);
    if (!live.ok()) return live.status();
    sha = live->revision().sha();
  }
  v1::PinState pin;
  pin.set_application_id(req.application_id());
  pin.set_environment_id(req.environment_id());
  pin.set_pinned(true);
  pin.set_sha(sha);
  *pin.mutable_actor() = req.actor();
  pin.set_reason(req.reason());
  *pin.mutable_time() = ToTimestamp(clock_->Now());
  absl::Status s = store_->SavePin(
      pin, {AppEvent(v1::AUDIT_ACTION_PINNED, req.application_id(), req.environment_id(), req.actor(),
                     absl::StrCat("pinned at ", sha, req.reason().empty() ? "" : ": " + req.reason()),
                     absl::StrCat("pin/", AppKey(req.application_id(), req.environment_id()), "/",
                                  absl::ToUnixNanos(clock_->Now())),
                     {{"sha", sha}, {"reason", req.reason()}})});
  if (!s.ok()) return s;
  return pin;
}

absl::StatusOr<v1::PinState> Deployer::Unpin(const v1::UnpinRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  absl::StatusOr<v1::PinState> pin = store_->GetPin(req.application_id(), req.environment_id());
  if (!pin.ok()) return pin.status();
  pin->set_pinned(false);
  *pin->mutable_actor() = req.actor();
  pin->set_reason(req.reason());
  *pin->mutable_time() = ToTimestamp(clock_->Now());
  absl::Status s = store_->SavePin(
      *pin, {AppEvent(v1::AUDIT_ACTION_UNPINNED, req.application_id(), req.environment_id(), req.actor(),
                      absl::StrCat("unpinned", req.reason().empty() ? "" : ": " + req.reason()),
                      absl::StrCat("unpin/", AppKey(req.application_id(), req.environment_id()), "/",
                                   absl::ToUnixNanos(clock_->Now())),
                      {{"sha", pin->sha()}, {"reason", req.reason()}})});
  if (!s.ok()) return s;
  if (plans_ != nullptr) {
    v1::RefreshApplicationRequest r;
    r.set_application_id(req.application_id());
    r.set_environment_id(req.environment_id());
    *r.mutable_actor() = req.actor();
    absl::Status refreshed = plans_->Refresh(r);
    if (!refreshed.ok()) logging::Info("planner refresh after unpin failed", {{"error", refreshed.ToString()}});
  }
  return *pin;
}

absl::StatusOr<v1::LiveState> Deployer::Observe(const std::string& app, const std::string& env,
                                                const v1::DeployTarget* target_config,
                                                const std::vector<ObjectKey>& extra, bool include_json) {
  absl::Status ids = RequireIds(app, env);
  if (!ids.ok()) return ids;
  absl::StatusOr<std::optional<ManagedApp>> managed = store_->GetManagedApp(app, env);
  if (!managed.ok()) return managed.status();
  v1::DeployTarget config;
  if (managed->has_value()) {
    config = (*managed)->target;
  } else if (target_config != nullptr && target_config->kind() != v1::TARGET_KIND_UNSPECIFIED) {
    config = *target_config;
  } else {
    return absl::NotFoundError(
        absl::StrCat("application \"", app, "\" has never been deployed to \"", env, "\"; pass its target"));
  }
  absl::StatusOr<Target*> target = targets_->For(config);
  if (!target.ok()) return target.status();
  absl::StatusOr<std::vector<AppliedObject>> applied = store_->Applied(app, env);
  if (!applied.ok()) return applied.status();
  absl::StatusOr<v1::PinState> pin = store_->GetPin(app, env);
  if (!pin.ok()) return pin.status();
  v1::LiveState out;
  out.set_application_id(app);
  out.set_environment_id(env);
  *out.mutable_pin() = *pin;
  *out.mutable_observe_time() = ToTimestamp(clock_->Now());
  if (managed->has_value() && !(*managed)->live_deployment_id.empty()) {
    absl::StatusOr<v1::Deployment> live = store_->Get((*managed)->live_deployment_id, false);
    if (live.ok()) {
      *out.mutable_revision() = live->revision();
      out.set_deployment_id(live->id());
      out.set_manifests_digest(live->manifests_digest());
    }
  }
  AppScope scope{app, env};
  std::map<ObjectKey, v1::LiveObject> objects;
  v1::HealthStatus worst = v1::HEALTH_STATUS_HEALTHY;
  bool drifted = false;
  for (const AppliedObject& a : *applied) {
    ObservedObject o = (*target)->Observe(scope, a.object.key, &a.object);
    v1::LiveObject lo;
    *lo.mutable_object() = a.object.key.ToProto();
    lo.set_health(o.health);
    lo.set_health_message(o.health_message);
    lo.set_drift(o.drift);
    lo.set_drift_message(o.drift_message);
    if (include_json) {
      lo.set_live_json(o.live_json);
      lo.set_applied_json(a.object.json);
    }
    if (HealthRank(o.health) > HealthRank(worst)) worst = o.health;
    if (o.drift == v1::DRIFT_STATUS_MODIFIED || o.drift == v1::DRIFT_STATUS_MISSING) drifted = true;
    objects[a.object.key] = std::move(lo);
  }
  for (const ObjectKey& k : extra) {
    if (objects.count(k)) continue;
    ObservedObject o = (*target)->Observe(scope, k, nullptr);
    v1::LiveObject lo;
    *lo.mutable_object() = k.ToProto();
    lo.set_health(o.health);
    lo.set_health_message(o.health_message);
    lo.set_drift(v1::DRIFT_STATUS_UNKNOWN);
    if (include_json) lo.set_live_json(o.live_json);
    objects[k] = std::move(lo);
  }
  for (auto& [k, lo] : objects) *out.add_objects() = std::move(lo);
  out.set_health(applied->empty() ? v1::HEALTH_STATUS_MISSING : worst);
  out.set_sync_status(drifted ? v1::SYNC_STATUS_OUT_OF_SYNC : v1::SYNC_STATUS_SYNCED);
  return out;
}

absl::StatusOr<v1::LiveState> Deployer::GetLiveState(const v1::GetLiveStateRequest& req) {
  return Observe(req.application_id(), req.environment_id(), nullptr, {}, req.include_json());
}

absl::StatusOr<v1::LiveState> Deployer::ObserveLiveState(const v1::ObserveLiveStateRequest& req) {
  std::vector<ObjectKey> extra;
  for (const v1::ObjectRef& r : req.objects()) extra.push_back(ObjectKey::FromProto(r));
  return Observe(req.application_id(), req.environment_id(), req.has_target() ? &req.target() : nullptr, extra, true);
}

absl::StatusOr<v1::DriftSettings> Deployer::GetDriftSettings(const std::string& app, const std::string& env) {
  if (app.empty() != env.empty()) {
    return absl::InvalidArgumentError("application_id and environment_id must both be set or both be empty");
  }
  return EffectiveSettings(app, env);
}

absl::StatusOr<v1::DriftSettings> Deployer::UpdateDriftSettings(const v1::UpdateDriftSettingsRequest& req) {
  const v1::DriftSettings& in = req.settings();
  if (in.application_id().empty() != in.environment_id().empty()) {
    return absl::InvalidArgumentError(
        "settings.application_id and settings.environment_id must both be set or both be empty");
  }
  if (in.has_interval() && FromProto(in.interval()) < absl::Seconds(1)) {
    return absl::InvalidArgumentError("settings.interval must be at least 1s");
  }
  if (in.heal_backoff().factor() < 0) return absl::InvalidArgumentError("settings.heal_backoff.factor must be >= 0");
  v1::DriftSettings stored;
  absl::StatusOr<v1::DriftSettings> current = store_->GetDriftSettings(in.application_id(), in.environment_id());
  if (current.ok()) {
    stored = *current;
  } else if (!absl::IsNotFound(current.status())) {
    return current.status();  // a partial update would reset the other fields
  }
  stored.set_application_id(in.application_id());
  stored.set_environment_id(in.environment_id());
  std::vector<std::string> paths(req.update_mask().paths().begin(), req.update_mask().paths().end());
  if (paths.empty()) paths = {"disabled", "interval", "heal_backoff"};
  for (const std::string& p : paths) {
    if (p == "disabled") {
      stored.set_disabled(in.disabled());
    } else if (p == "interval") {
      *stored.mutable_interval() = in.interval();
    } else if (p == "heal_backoff") {
      *stored.mutable_heal_backoff() = in.heal_backoff();
    } else {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: unknown field \"", p, "\""));
    }
  }
  absl::Status s = store_->SaveDriftSettings(stored);
  if (!s.ok()) return s;
  return GetDriftSettings(in.application_id(), in.environment_id());
}

}  // namespace ferry::deployer
