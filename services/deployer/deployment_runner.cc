#include "services/deployer/deployment_runner.h"

#include <google/protobuf/util/time_util.h>
#include <openssl/rand.h>

#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/logging/logger.h"
#include "services/deployer/audit_events.h"
#include "services/deployer/deployment_state.h"

namespace ferry::deployer {

struct DeploymentRunner::Exec {
  v1::Deployment d;
  v1::Plan spec;
  Target* target = nullptr;
  AppScope scope;
  int64_t next_seq = 1;
  absl::Duration health_timeout;
};

namespace {


std::string Describe(const ObjectKey& k) { return absl::StrCat(k.kind, " \"", k.name, "\""); }

}  // namespace

DeploymentRunner::DeploymentRunner(DeploymentStore* store, TargetFactory* targets, DeploymentNotifier* notifier,
                                   DeployerMetrics* metrics, const Clock* clock, RunnerOptions options)
    : store_(store), targets_(targets), notifier_(notifier), metrics_(metrics), clock_(clock), options_(options) {}

std::vector<TargetObject> DeploymentRunner::ObjectsOf(const v1::Plan& spec) {
  std::vector<TargetObject> out;
  for (const v1::Manifest& m : spec.manifests()) {
    out.push_back(TargetObject{ObjectKey::FromProto(m.object()), m.json(), m.source_path(), m.wave()});
  }
  return out;
}

std::string DeploymentRunner::NewId() {
  unsigned char b[8];
  RAND_bytes(b, sizeof b);
  std::string out = "dep-";
  for (unsigned char c : b) absl::StrAppendFormat(&out, "%02x", c);
  return out;
}

v1::DeploymentStep DeploymentRunner::NewStep(Exec& ex, v1::StepKind kind, int wave, const std::string& message) {
  v1::DeploymentStep step;
  step.set_sequence(ex.next_seq++);
  step.set_kind(kind);
  step.set_wave(wave);
  step.set_result(v1::STEP_RESULT_RUNNING);
  step.set_attempt(1);
  step.set_message(message);
  *step.mutable_start_time() = ToTimestamp(clock_->Now());
  return step;
}

void DeploymentRunner::EndStep(v1::DeploymentStep& step, v1::StepResult result, const std::string& message) {
  step.set_result(result);
  step.set_message(message);
  *step.mutable_end_time() = ToTimestamp(clock_->Now());
}

absl::Status DeploymentRunner::SaveStep(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change) {
  std::vector<v1::Event> events;
  if (step.result() != v1::STEP_RESULT_RUNNING) {
    std::string what = step.has_object() ? absl::StrCat(" ", ObjectKey::FromProto(step.object()).ToString()) : "";
    v1::Event e = DeploymentEvent(
        v1::AUDIT_ACTION_DEPLOYMENT_STEP, ex.d,
        absl::StrCat(v1::StepKind_Name(step.kind()), what, " wave ", step.wave(), ": ",
                     v1::StepResult_Name(step.result()), step.message().empty() ? "" : " - " + step.message()),
        absl::StrCat("step/", step.sequence()));
    auto& f = *e.mutable_details()->mutable_fields();
    f["step"].set_number_value(static_cast<double>(step.sequence()));
    f["step_kind"].set_string_value(v1::StepKind_Name(step.kind()));
    f["result"].set_string_value(v1::StepResult_Name(step.result()));
    if (step.has_object()) f["object"].set_string_value(ObjectKey::FromProto(step.object()).ToString());
    events.push_back(std::move(e));
  }
  absl::Status s = store_->SaveStep(ex.d.id(), step, change, events);
  if (!s.ok()) return s;
  v1::WatchDeploymentResponse ev;
  *ev.mutable_step() = step;
  notifier_->Publish(ex.d.id(), ev);
  return absl::OkStatus();
}

absl::Status DeploymentRunner::SaveDeployment(Exec& ex, const std::vector<v1::Event>& events, const ManagedApp* app,
                                              const v1::PinState* pin) {
  absl::Status s = store_->Update(ex.d, events, app, pin);
  if (!s.ok()) return s;
  v1::WatchDeploymentResponse ev;
  *ev.mutable_deployment() = ex.d;
  ev.mutable_deployment()->clear_steps();
  notifier_->Publish(ex.d.id(), ev);
  return absl::OkStatus();
}

absl::Status DeploymentRunner::Begin(Exec& ex) {
  absl::StatusOr<Target*> target = targets_->For(ex.spec.target());
  if (!target.ok()) return target.status();
  ex.target = *target;
  ex.scope = AppScope{ex.d.application_id(), ex.d.environment_id()};
  ex.health_timeout = ex.spec.has_health_timeout()
                          ? absl::Seconds(ex.spec.health_timeout().seconds()) +
                                absl::Nanoseconds(ex.spec.health_timeout().nanos())
                          : options_.default_health_timeout;
  if (ex.health_timeout <= absl::ZeroDuration()) ex.health_timeout = options_.default_health_timeout;
  ex.d.set_deployer_id(options_.deployer_id);
  if (ex.d.state() != v1::DEPLOYMENT_STATE_PENDING) return absl::OkStatus();
  ex.d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
  *ex.d.mutable_start_time() = ToTimestamp(clock_->Now());
  ManagedApp app{ex.d.application_id(), ex.d.environment_id(), ex.spec.target(), ex.spec.sync_policy(), ""};
  return SaveDeployment(ex,
                        {DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_STARTED, ex.d,
                                         absl::StrCat(v1::DeploymentKind_Name(ex.d.kind()), " of ",
                                                      ex.d.revision().sha().empty() ? "(no revision)" : ex.d.revision().sha(),
                                                      " to ", ex.d.environment_id(), " started"),
                                         "started")},
                        &app, nullptr);
}

bool DeploymentRunner::WaitHealthy(Exec& ex, const std::vector<TargetObject>& objects, absl::Time deadline,
                                   std::string* why) {
  while (true) {
    std::vector<std::string> bad;
    for (const TargetObject& o : objects) {
      auto [health, msg] = ex.target->Health(ex.scope, o);
      bool ok = health == v1::HEALTH_STATUS_HEALTHY;
      metrics_->HealthChecked(ok);
      if (!ok) bad.push_back(absl::StrCat(Describe(o.key), ": ", v1::HealthStatus_Name(health), " (", msg, ")"));
    }
    if (bad.empty()) return true;
    if (stopping_ || clock_->Now() + options_.health_poll > deadline) {
      *why = absl::StrJoin(bad, "; ");
      return false;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(options_.health_poll));
  }
}

absl::Status DeploymentRunner::Execute(Exec& ex, std::string* failure) {
  absl::StatusOr<std::vector<AppliedObject>> applied_list = store_->Applied(ex.d.application_id(), ex.d.environment_id());
  if (!applied_list.ok()) return applied_list.status();
  std::map<ObjectKey, TargetObject> applied;
  for (AppliedObject& a : *applied_list) applied[a.object.key] = std::move(a.object);
  std::map<int, std::vector<TargetObject>> waves;
  std::map<ObjectKey, bool> desired;
  for (TargetObject& o : ObjectsOf(ex.spec)) {
    desired[o.key] = true;
    waves[o.wave].push_back(std::move(o));
  }
  for (auto& [wave, objects] : waves) {
    if (stopping_) return absl::AbortedError("deployer stopping");
    absl::Time deadline = clock_->Now() + ex.health_timeout;
    for (const TargetObject& obj : objects) {
      if (stopping_) return absl::AbortedError("deployer stopping");
      auto prev = applied.find(obj.key);
      const TargetObject* previous = prev == applied.end() ? nullptr : &prev->second;
      if (previous != nullptr && previous->json == obj.json &&
          ex.target->Observe(ex.scope, obj.key, previous).drift == v1::DRIFT_STATUS_IN_SYNC) {
        continue;  // Live and unchanged: nothing to do.
      }
      v1::DeploymentStep step = NewStep(ex, v1::STEP_KIND_APPLY, wave, "");
      *step.mutable_object() = obj.key.ToProto();
      step.set_action(previous == nullptr ? v1::OBJECT_ACTION_CREATE : v1::OBJECT_ACTION_UPDATE);
      absl::Status s = SaveStep(ex, step, nullptr);
      if (!s.ok()) return s;
      absl::Status applied_status = ex.target->Apply(ex.scope, obj, previous, deadline, &stopping_);
      if (!applied_status.ok() && stopping_) return absl::AbortedError("deployer stopping");
      if (!applied_status.ok()) {
        EndStep(step, v1::STEP_RESULT_FAILED, std::string(applied_status.message()));
        s = SaveStep(ex, step, nullptr);
        if (!s.ok()) return s;
        *failure = absl::StrCat("wave ", wave, ": ", Describe(obj.key), ": ", applied_status.message());
        return absl::OkStatus();
      }
      EndStep(step, v1::STEP_RESULT_SUCCEEDED, "applied");
      AppliedChange change{ex.d.application_id(), ex.d.environment_id(), obj, false, ex.d.id()};
      s = SaveStep(ex, step, &change);
      if (!s.ok()) return s;
      applied[obj.key] = obj;
    }
    v1::DeploymentStep health = NewStep(
        ex, v1::STEP_KIND_HEALTH_CHECK, wave,
        absl::StrCat("waiting up to ", absl::FormatDuration(ex.health_timeout), " for ", objects.size(), " objects"));
    absl::Status s = SaveStep(ex, health, nullptr);
    if (!s.ok()) return s;
    std::string why;
    bool healthy = WaitHealthy(ex, objects, deadline, &why);
    if (stopping_ && !healthy) return absl::AbortedError("deployer stopping");
    EndStep(health, healthy ? v1::STEP_RESULT_SUCCEEDED : v1::STEP_RESULT_FAILED,
            healthy ? absl::StrCat(objects.size(), " objects healthy")
                    : absl::StrCat("not healthy within ", absl::FormatDuration(ex.health_timeout), ": ", why));
    s = SaveStep(ex, health, nullptr);
    if (!s.ok()) return s;
    if (!healthy) {
      *failure = absl::StrCat("wave ", wave, ": ", health.message());
      return absl::OkStatus();
    }
  }
  // Prune last. Rollbacks always restore the exact earlier set; self-heal
  // only re-applies the drifted objects it was given.
  bool prune = ex.d.kind() != v1::DEPLOYMENT_KIND_SELF_HEAL &&
               (ex.spec.sync_policy().prune() || ex.d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK ||
                ex.d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK);
  if (!prune) return absl::OkStatus();
  for (const auto& [key, obj] : applied) {
    if (desired.count(key)) continue;
    if (stopping_) return absl::AbortedError("deployer stopping");
    v1::DeploymentStep step = NewStep(ex, v1::STEP_KIND_DELETE, obj.wave, "prune");
    *step.mutable_object() = key.ToProto();
    step.set_action(v1::OBJECT_ACTION_DELETE);
    absl::Status s = SaveStep(ex, step, nullptr);
    if (!s.ok()) return s;
    absl::Status deleted = ex.target->Delete(ex.scope, obj, clock_->Now() + ex.health_timeout);
    if (!deleted.ok()) {
      EndStep(step, v1::STEP_RESULT_FAILED, std::string(deleted.message()));
      s = SaveStep(ex, step, nullptr);
      if (!s.ok()) return s;
      *failure = absl::StrCat("prune ", Describe(key), ": ", deleted.message());
      return absl::OkStatus();
    }
    EndStep(step, v1::STEP_RESULT_SUCCEEDED, "deleted");
    AppliedChange change{ex.d.application_id(), ex.d.environment_id(), obj, true, ex.d.id()};
    s = SaveStep(ex, step, &change);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Succeed(Exec& ex) {
  v1::Deployment& d = ex.d;
  d.set_state(v1::DEPLOYMENT_STATE_SUCCEEDED);
  *d.mutable_end_time() = ToTimestamp(clock_->Now());
  if (d.message().empty() || d.kind() != v1::DEPLOYMENT_KIND_AUTO_ROLLBACK) {
    d.set_message(absl::StrCat(ex.spec.manifests_size(), " objects live and healthy"));
  }
  std::vector<v1::Event> events = {
      DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, d, absl::StrCat(v1::DeploymentKind_Name(d.kind()), " of ",
                                                                           d.revision().sha(), " succeeded: ", d.message()),
                      "succeeded")};
  ManagedApp app{d.application_id(), d.environment_id(), ex.spec.target(), ex.spec.sync_policy(),
                 d.kind() == v1::DEPLOYMENT_KIND_SELF_HEAL ? "" : d.id()};
  // Pins: a rollback pins the application at the restored revision; a plan
  // approved by a person moves a pinned application forward and unpins it.
  absl::StatusOr<v1::PinState> current = store_->GetPin(d.application_id(), d.environment_id());
  if (!current.ok()) return current.status();
  std::optional<v1::PinState> pin;
  bool rollback = d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK || d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK;
  if (rollback) {
    pin = *current;
    pin->set_pinned(true);
    pin->set_sha(d.revision().sha());
    pin->set_deployment_id(d.id());
    *pin->mutable_time() = ToTimestamp(clock_->Now());
    if (d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK) {
      *pin->mutable_actor() = FerryActor();
      pin->set_reason(absl::StrCat("automatic rollback after deployment ", d.rollback_of_deployment_id(), " failed"));
    } else if (!current->pinned()) {
      *pin->mutable_actor() = d.actor();
      pin->set_reason("rollback");
    }
    // An explicit Rollback pinned already (and said so); only a new pin is audited.
    if (!(current->pinned() && current->sha() == pin->sha())) {
      events.push_back(AppEvent(v1::AUDIT_ACTION_PINNED, d.application_id(), d.environment_id(), pin->actor(),
                                absl::StrCat("pinned at ", pin->sha(), ": ", pin->reason()),
                                absl::StrCat("deployment/", d.id(), "/pinned"),
                                {{"sha", pin->sha()}, {"deployment_id", d.id()}, {"reason", pin->reason()}}));
    }
  } else if (current->pinned() && d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT && !ex.spec.decision().automatic()) {
    pin = *current;
    pin->set_pinned(false);
    *pin->mutable_actor() = d.actor();
    pin->set_reason(absl::StrCat("plan ", d.plan_id(), " for ", d.revision().sha(), " approved by ", d.actor().id()));
    *pin->mutable_time() = ToTimestamp(clock_->Now());
    events.push_back(AppEvent(v1::AUDIT_ACTION_UNPINNED, d.application_id(), d.environment_id(), d.actor(),
                              absl::StrCat("unpinned: ", pin->reason()), absl::StrCat("deployment/", d.id(), "/unpinned"),
                              {{"sha", d.revision().sha()}, {"deployment_id", d.id()}}));
  }
  absl::Status s = SaveDeployment(ex, events, &app, pin ? &*pin : nullptr);
  if (!s.ok()) return s;
  metrics_->DeploymentFinished(d.state(), absl::ToDoubleSeconds(FromTimestamp(d.end_time()) - FromTimestamp(d.start_time())));
  if (d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK && !d.rollback_of_deployment_id().empty()) {
    absl::StatusOr<v1::Deployment> failed = store_->Get(d.rollback_of_deployment_id(), false);
    if (!failed.ok()) return failed.status();
    if (failed->state() != v1::DEPLOYMENT_STATE_ROLLED_BACK) {
      Exec fx;
      fx.d = *failed;
      fx.d.set_state(v1::DEPLOYMENT_STATE_ROLLED_BACK);
      fx.d.set_rolled_back_by_deployment_id(d.id());
      fx.d.set_message(absl::StrCat(failed->message(), "; rolled back to ", d.revision().sha(), " by ", d.id()));
      s = SaveDeployment(fx,
                         {DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK, fx.d,
                                          absl::StrCat("rolled back to ", d.revision().sha(), " (deployment ",
                                                       d.restored_deployment_id(), ") by ", d.id()),
                                          "rolled-back")},
                         nullptr, nullptr);
      if (!s.ok()) return s;
      metrics_->DeploymentFinished(v1::DEPLOYMENT_STATE_ROLLED_BACK,
                                   absl::ToDoubleSeconds(clock_->Now() - FromTimestamp(fx.d.start_time())));
    }
  }
  logging::Info("deployment succeeded", {{"deployment", d.id()},
                                         {"application", d.application_id()},
                                         {"environment", d.environment_id()},
                                         {"kind", v1::DeploymentKind_Name(d.kind())}});
  return d;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Finish(Exec& ex, const std::string& failure) {
  if (failure.empty()) return Succeed(ex);
  v1::Deployment& d = ex.d;
  // The rollback is recorded (PENDING) before this deployment is marked
  // FAILED, so that a crash in between still leaves it to recovery.
  std::optional<std::pair<v1::Deployment, v1::Plan>> rollback;
  d.set_message(failure);
  if (d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT || d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK) {
    absl::StatusOr<std::vector<v1::Deployment>> good = store_->Succeeded(d.application_id(), d.environment_id());
    if (!good.ok()) return good.status();
    for (const v1::Deployment& g : *good) {
      if (g.id() == d.id()) continue;
      absl::StatusOr<std::pair<v1::Deployment, v1::Plan>> rb = PrepareRollback(ex, g);
      if (!rb.ok()) return rb.status();
      rollback = std::move(*rb);
      break;
    }
  }
  d.set_state(v1::DEPLOYMENT_STATE_FAILED);
  *d.mutable_end_time() = ToTimestamp(clock_->Now());
  absl::Status s = SaveDeployment(
      ex, {DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, d, absl::StrCat("deployment failed: ", failure), "failed")},
      nullptr, nullptr);
  if (!s.ok()) return s;
  logging::Warn("deployment failed", {{"deployment", d.id()},
                                     {"application", d.application_id()},
                                     {"environment", d.environment_id()},
                                     {"reason", failure},
                                     {"rolling_back", rollback.has_value()}});
  double seconds = absl::ToDoubleSeconds(FromTimestamp(d.end_time()) - FromTimestamp(d.start_time()));
  if (rollback) {
    absl::StatusOr<v1::Deployment> rb = Run(rollback->first, rollback->second);
    if (!rb.ok()) return rb.status();
    absl::StatusOr<v1::Deployment> now = store_->Get(d.id(), false);
    if (now.ok() && now->state() == v1::DEPLOYMENT_STATE_FAILED) metrics_->DeploymentFinished(now->state(), seconds);
    return now;
  }
  metrics_->DeploymentFinished(d.state(), seconds);
  return d;
}

absl::StatusOr<std::pair<v1::Deployment, v1::Plan>> DeploymentRunner::PrepareRollback(Exec& failed,
                                                                                      const v1::Deployment& restore) {
  absl::StatusOr<v1::Plan> spec = store_->GetSpec(restore.id());
  if (!spec.ok()) return spec.status();
  v1::Deployment r;
  r.set_id(NewId());
  r.set_application_id(failed.d.application_id());
  r.set_environment_id(failed.d.environment_id());
  r.set_kind(v1::DEPLOYMENT_KIND_AUTO_ROLLBACK);
  r.set_state(v1::DEPLOYMENT_STATE_PENDING);
  *r.mutable_revision() = restore.revision();
  *r.mutable_previous_revision() = failed.d.revision();
  r.set_manifests_digest(restore.manifests_digest());
  *r.mutable_actor() = FerryActor();
  r.set_rollback_of_deployment_id(failed.d.id());
  r.set_restored_deployment_id(restore.id());
  r.set_recovered(failed.d.recovered());
  r.set_message(absl::StrCat("restoring ", restore.revision().sha(), " (deployment ", restore.id(), ") after: ",
                             failed.d.message()));
  *r.mutable_create_time() = ToTimestamp(clock_->Now());
  absl::Status s = store_->Create(r, *spec, {});
  if (!s.ok()) return s;
  return std::make_pair(r, *spec);
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Run(v1::Deployment deployment, const v1::Plan& spec) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  absl::Status s = Begin(ex);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) return RecordRefused(ex.d, spec, std::string(s.message()));
    return s;
  }
  std::string failure;
  s = Execute(ex, &failure);
  if (!s.ok()) return s;
  return Finish(ex, failure);
}

absl::StatusOr<v1::Deployment> DeploymentRunner::RecordRefused(v1::Deployment deployment, const v1::Plan& spec,
                                                               const std::string& reason) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  ex.d.set_state(v1::DEPLOYMENT_STATE_FAILED);
  ex.d.set_message(absl::StrCat("refused before anything changed: ", reason));
  *ex.d.mutable_end_time() = ToTimestamp(clock_->Now());
  if (!ex.d.has_start_time()) *ex.d.mutable_start_time() = ex.d.end_time();
  absl::Status s = SaveDeployment(
      ex, {DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, ex.d, ex.d.message(), "failed")}, nullptr, nullptr);
  if (!s.ok()) return s;
  metrics_->DeploymentFinished(ex.d.state(), 0);
  return ex.d;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Recover(v1::Deployment deployment, const v1::Plan& spec) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  if (IsTerminal(ex.d.state())) return ex.d;
  absl::StatusOr<v1::Deployment> with_steps = store_->Get(ex.d.id(), true);
  if (!with_steps.ok()) return with_steps.status();
  for (const v1::DeploymentStep& st : with_steps->steps()) ex.next_seq = std::max(ex.next_seq, st.sequence() + 1);
  bool was_pending = ex.d.state() == v1::DEPLOYMENT_STATE_PENDING;
  ex.d.set_recovered(true);
  absl::Status s = Begin(ex);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) return RecordRefused(ex.d, spec, std::string(s.message()));
    return s;
  }
  // Steps left RUNNING by the dead deployer never finished: say so.
  for (v1::DeploymentStep st : with_steps->steps()) {
    if (st.result() != v1::STEP_RESULT_RUNNING) continue;
    EndStep(st, v1::STEP_RESULT_FAILED, "interrupted: the deployer stopped while this step ran");
    s = SaveStep(ex, st, nullptr);
    if (!s.ok()) return s;
  }
  v1::DeploymentStep step = NewStep(ex, v1::STEP_KIND_RECOVERY, 0,
                                    was_pending ? "deployer restarted before this deployment started"
                                                : "deployer restarted while this deployment ran; re-observing");
  s = SaveStep(ex, step, nullptr);
  if (!s.ok()) return s;
  std::string failure;
  if (was_pending) {
    EndStep(step, v1::STEP_RESULT_SUCCEEDED, "nothing had changed; starting it now");
    s = SaveStep(ex, step, nullptr);
    if (!s.ok()) return s;
    s = Execute(ex, &failure);
    if (!s.ok()) return s;
    return Finish(ex, failure);
  }
  // Re-observe: is everything of this deployment live and healthy?
  absl::StatusOr<std::vector<AppliedObject>> applied_list = store_->Applied(ex.d.application_id(), ex.d.environment_id());
  if (!applied_list.ok()) return applied_list.status();
  std::map<ObjectKey, TargetObject> applied;
  for (AppliedObject& a : *applied_list) applied[a.object.key] = std::move(a.object);
  std::vector<TargetObject> desired = ObjectsOf(spec);
  std::vector<std::string> missing;
  for (const TargetObject& o : desired) {
    auto it = applied.find(o.key);
    if (it == applied.end() || it->second.json != o.json) {
      missing.push_back(absl::StrCat(Describe(o.key), " not applied"));
      continue;
    }
    ObservedObject obs = ex.target->Observe(ex.scope, o.key, &o);
    if (obs.drift != v1::DRIFT_STATUS_IN_SYNC) missing.push_back(absl::StrCat(Describe(o.key), ": ", obs.drift_message));
  }
  std::string why;
  if (missing.empty() && WaitHealthy(ex, desired, clock_->Now() + ex.health_timeout, &why)) {
    EndStep(step, v1::STEP_RESULT_SUCCEEDED,
            absl::StrCat("all ", desired.size(), " objects were live at this revision and healthy; completed"));
    s = SaveStep(ex, step, nullptr);
    if (!s.ok()) return s;
    // Finish any prune that had not run yet.
    s = Execute(ex, &failure);
    if (!s.ok()) return s;
    return Finish(ex, failure);
  }
  std::string found = missing.empty() ? absl::StrCat("not healthy: ", why)
                                      : absl::StrCat(missing.size(), " of ", desired.size(),
                                                     " objects not live at this revision (", absl::StrJoin(missing, "; "), ")");
  absl::StatusOr<std::vector<v1::Deployment>> good = store_->Succeeded(ex.d.application_id(), ex.d.environment_id());
  if (!good.ok()) return good.status();
  bool can_roll_back = (ex.d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT || ex.d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK) &&
                       !good->empty();
  if (can_roll_back) {
    EndStep(step, v1::STEP_RESULT_SUCCEEDED, absl::StrCat(found, "; rolling back to the last successful deployment"));
    s = SaveStep(ex, step, nullptr);
    if (!s.ok()) return s;
    return Finish(ex, absl::StrCat("interrupted by a deployer restart before it completed: ", found));
  }
  EndStep(step, v1::STEP_RESULT_SUCCEEDED, absl::StrCat(found, "; resuming"));
  s = SaveStep(ex, step, nullptr);
  if (!s.ok()) return s;
  s = Execute(ex, &failure);
  if (!s.ok()) return s;
  return Finish(ex, failure);
}

}  // namespace ferry::deployer
