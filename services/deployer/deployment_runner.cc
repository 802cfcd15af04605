#include "services/deployer/deployment_runner.h"

#include <google/protobuf/util/time_util.h>
#include <openssl/rand.h>

#include <csignal>
#include <map>
#include <set>
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
  // Resuming after an interruption: an object the target shows live at the
  // desired spec already is recorded, not applied again.
  bool resuming = false;
  // Waves whose health check succeeded before the interruption: when none of
  // their objects changes on resuming, they are not checked again.
  std::set<int> healthy_waves;
  // Set by WaitHealthy when it gave up early: an object failed for good.
  bool failed_for_good = false;
  // The pin and applied objects read with the deployment (Run's `read`);
  // null: Begin and Execute read them.
  const DeploymentRecords::AppState* read = nullptr;
  // Outcomes saved with the next write (SaveStepWithNext), in order, and how
  // many of them count for the test failpoint.
  std::vector<DeploymentRecords::StepWrite> pending;
  int pending_counted = 0;
  // Begin's update of a run (hold_begin), saved with the first step's start:
  // the record as it began, its events and its managed application.
  struct HeldUpdate {
    v1::Deployment d;
    std::vector<v1::Event> events;
    ManagedApp app;
  };
  bool hold_begin = false;
  std::optional<HeldUpdate> held_update;
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

absl::Status DeploymentRunner::SaveStep(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change,
                                        const std::string& plan_digest) {
  DeploymentRecords::StepWrite write = StepWriteOf(ex, step, change, plan_digest);
  absl::Status s;
  if (ex.held_update.has_value() && ex.pending.empty() && write.events.empty() && !write.change.has_value()) {
    // The first step's start with the deployment's: one write.
    Exec::HeldUpdate u = std::move(*ex.held_update);
    ex.held_update.reset();
    s = store_->SaveStepsThenUpdate({write}, u.d, u.events, &u.app, nullptr);
    if (s.ok()) PublishRecord(ex.d.id(), u.d);
  } else if (s = SaveHeldUpdate(ex); !s.ok()) {
    return s;
  } else if (ex.pending.empty()) {
    s = store_->SaveStep(ex.d.id(), write.step, change, write.events);
  } else {
    std::vector<DeploymentRecords::StepWrite> writes = TakePending(ex);
    writes.push_back(std::move(write));
    s = store_->SaveSteps(ex.d.id(), writes);
    if (s.ok()) PublishSteps(ex, writes, writes.size() - 1);
  }
  if (!s.ok()) return s;
  v1::WatchDeploymentResponse ev;
  *ev.mutable_step() = step;
  notifier_->Publish(ex.d.id(), ev);
  return absl::OkStatus();
}

void DeploymentRunner::SaveStepWithNext(Exec& ex, const v1::DeploymentStep& step, const AppliedChange* change,
                                        const std::string& plan_digest) {
  ex.pending.push_back(StepWriteOf(ex, step, change, plan_digest));
  ++ex.pending_counted;
}

std::vector<DeploymentRecords::StepWrite> DeploymentRunner::TakePending(Exec& ex) {
  std::vector<DeploymentRecords::StepWrite> out = std::move(ex.pending);
  ex.pending.clear();
  return out;
}

void DeploymentRunner::PublishSteps(Exec& ex, const std::vector<DeploymentRecords::StepWrite>& writes, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    v1::WatchDeploymentResponse ev;
    *ev.mutable_step() = writes[i].step;
    notifier_->Publish(ex.d.id(), ev);
  }
  // Saved now: the failpoint counts them.
  const int counted = ex.pending_counted;
  ex.pending_counted = 0;
  for (int i = 0; i < counted; ++i) StepSaved();
}

absl::Status DeploymentRunner::SaveHeldUpdate(Exec& ex) {
  if (!ex.held_update.has_value()) return absl::OkStatus();
  Exec::HeldUpdate u = std::move(*ex.held_update);
  ex.held_update.reset();
  absl::Status s = store_->Update(u.d, u.events, &u.app, nullptr);
  if (s.ok()) PublishRecord(ex.d.id(), u.d);
  return s;
}

void DeploymentRunner::PublishRecord(const std::string& id, const v1::Deployment& d) {
  v1::WatchDeploymentResponse ev;
  *ev.mutable_deployment() = d;
  ev.mutable_deployment()->clear_steps();
  notifier_->Publish(id, ev);
}

absl::Status DeploymentRunner::SavePending(Exec& ex) {
  if (absl::Status s = SaveHeldUpdate(ex); !s.ok()) return s;
  if (ex.pending.empty()) return absl::OkStatus();
  std::vector<DeploymentRecords::StepWrite> writes = TakePending(ex);
  absl::Status s = store_->SaveSteps(ex.d.id(), writes);
  if (s.ok()) PublishSteps(ex, writes, writes.size());
  return s;
}

DeploymentRecords::StepWrite DeploymentRunner::StepWriteOf(Exec& ex, const v1::DeploymentStep& step,
                                                           const AppliedChange* change,
                                                           const std::string& plan_digest) {
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
    if (!plan_digest.empty()) f["plan_digest"].set_string_value(plan_digest);
    events.push_back(std::move(e));
  }
  return DeploymentRecords::StepWrite{step, change != nullptr ? std::optional<AppliedChange>(*change) : std::nullopt,
                                      std::move(events)};
}

absl::Status DeploymentRunner::SaveDeployment(Exec& ex, const std::vector<v1::Event>& events, const ManagedApp* app,
                                              const v1::PinState* pin) {
  absl::Status s = SaveHeldUpdate(ex);
  if (!s.ok()) return s;
  if (ex.pending.empty()) {
    s = store_->Update(ex.d, events, app, pin);
  } else {
    std::vector<DeploymentRecords::StepWrite> writes = TakePending(ex);
    s = store_->SaveStepsThenUpdate(writes, ex.d, events, app, pin);
    if (s.ok()) PublishSteps(ex, writes, writes.size());
  }
  if (!s.ok()) return s;
  PublishRecord(ex.d.id(), ex.d);
  return absl::OkStatus();
}

absl::Status DeploymentRunner::Begin(Exec& ex) {
  absl::StatusOr<Target*> target = targets_->For(ex.spec.target());
  if (!target.ok()) return target.status();
  ex.target = *target;
  ex.scope = AppScope{ex.d.application_id(), ex.d.environment_id(), ex.spec.sync_policy().force_conflicts()};
  ex.health_timeout = ex.spec.has_health_timeout()
                          ? absl::Seconds(ex.spec.health_timeout().seconds()) +
                                absl::Nanoseconds(ex.spec.health_timeout().nanos())
                          : options_.default_health_timeout;
  if (ex.health_timeout <= absl::ZeroDuration()) ex.health_timeout = options_.default_health_timeout;
  ex.d.set_deployer_id(options_.deployer_id);
  if (ex.d.state() != v1::DEPLOYMENT_STATE_PENDING) return absl::OkStatus();
  // A plan approved automatically waits its turn behind the environment's
  // running deployment; when that one failed and its automatic rollback
  // pinned the application, this plan must not run after all: the pin holds
  // the environment at the restored revision until someone unpins (as the
  // plan consumer does for plans that arrive while pinned). A person's
  // approval, a rollback or a self-heal still runs.
  if (ex.d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT && ex.spec.decision().automatic()) {
    absl::StatusOr<v1::PinState> pin = ex.read != nullptr ? absl::StatusOr<v1::PinState>(ex.read->pin)
                                                          : store_->GetPin(ex.d.application_id(), ex.d.environment_id());
    if (!pin.ok()) return pin.status();
    if (pin->pinned()) {
      return absl::InvalidArgumentError(
          absl::StrCat("application \"", ex.d.application_id(), "\" was pinned at ", pin->sha(), " in \"",
                       ex.d.environment_id(), "\" while this automatically approved plan waited its turn",
                       pin->reason().empty() ? "" : absl::StrCat(" (", pin->reason(), ")"),
                       "; unpin it (ferry app unpin) to deploy the branch head"));
    }
  }
  ex.d.set_state(v1::DEPLOYMENT_STATE_RUNNING);
  *ex.d.mutable_start_time() = ToTimestamp(clock_->Now());
  ManagedApp app{ex.d.application_id(), ex.d.environment_id(), ex.spec.target(), ex.spec.sync_policy(), ""};
  std::vector<v1::Event> events = {DeploymentEvent(
      v1::AUDIT_ACTION_DEPLOYMENT_STARTED, ex.d,
      absl::StrCat(v1::DeploymentKind_Name(ex.d.kind()), " of ",
                   ex.d.revision().sha().empty() ? "(no revision)" : ex.d.revision().sha(), " to ", ex.d.environment_id(),
                   " started"),
      "started")};
  if (ex.hold_begin) {
    // Saved with the first step's start (or whatever the run writes first):
    // nothing acts before that write. Until then the record says PENDING,
    // which recovery takes as never begun.
    ex.held_update = Exec::HeldUpdate{ex.d, std::move(events), std::move(app)};
    return absl::OkStatus();
  }
  return SaveDeployment(ex, events, &app, nullptr);
}

bool DeploymentRunner::WaitHealthy(Exec& ex, const std::vector<TargetObject>& objects, absl::Time deadline,
                                   std::string* why) {
  while (true) {
    std::vector<std::string> bad;
    bool failed_for_good = false;
    for (const TargetObject& o : objects) {
      auto [health, msg] = ex.target->Health(ex.scope, o);
      bool ok = health == v1::HEALTH_STATUS_HEALTHY;
      metrics_->HealthChecked(ok);
      if (ok) continue;
      bool final = health == v1::HEALTH_STATUS_DEGRADED && ex.target->FailedForGood(ex.scope, o);
      failed_for_good |= final;
      bad.push_back(absl::StrCat(Describe(o.key), ": ", v1::HealthStatus_Name(health), " (", msg, ")",
                                 final ? ", which waiting cannot mend" : ""));
    }
    if (bad.empty()) return true;
    ex.failed_for_good = failed_for_good;
    if (failed_for_good || stopping_ || clock_->Now() + options_.health_poll > deadline) {
      *why = absl::StrJoin(bad, "; ");
      return false;
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(options_.health_poll));
  }
}

absl::Status DeploymentRunner::Execute(Exec& ex, std::string* failure) {
  absl::StatusOr<std::vector<AppliedObject>> applied_list =
      ex.read != nullptr ? absl::StatusOr<std::vector<AppliedObject>>(ex.read->applied)
                         : store_->Applied(ex.d.application_id(), ex.d.environment_id());
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
    bool wave_changed = false;
    for (const TargetObject& obj : objects) {
      if (stopping_) return absl::AbortedError("deployer stopping");
      auto prev = applied.find(obj.key);
      const TargetObject* previous = prev == applied.end() ? nullptr : &prev->second;
      if (previous != nullptr && previous->json == obj.json &&
          ex.target->Observe(ex.scope, obj.key, previous).drift == v1::DRIFT_STATUS_IN_SYNC) {
        continue;  // Live and unchanged: nothing to do.
      }
      if (ex.resuming && ex.target->Observe(ex.scope, obj.key, &obj).drift == v1::DRIFT_STATUS_IN_SYNC) {
        // Applied before the interruption, but not recorded: record it, do not apply it again.
        v1::DeploymentStep step = NewStep(ex, v1::STEP_KIND_APPLY, wave, "");
        *step.mutable_object() = obj.key.ToProto();
        step.set_action(previous == nullptr ? v1::OBJECT_ACTION_CREATE : v1::OBJECT_ACTION_UPDATE);
        EndStep(step, v1::STEP_RESULT_SUCCEEDED, "already live at this revision (applied before the deployer restarted)");
        AppliedChange change{ex.d.application_id(), ex.d.environment_id(), obj, false, ex.d.id()};
        SaveStepWithNext(ex, step, &change);
        applied[obj.key] = obj;
        wave_changed = true;
        continue;
      }
      v1::DeploymentStep step = NewStep(ex, v1::STEP_KIND_APPLY, wave, "");
      *step.mutable_object() = obj.key.ToProto();
      step.set_action(previous == nullptr ? v1::OBJECT_ACTION_CREATE : v1::OBJECT_ACTION_UPDATE);
      absl::Status s = SaveStep(ex, step, nullptr);
      if (!s.ok()) return s;
      StepSaved();
      absl::Status applied_status = ex.target->Apply(ex.scope, obj, previous, deadline, &stopping_);
      // The saved plan it applied (Terraform), in the step and its audit event.
      const std::string plan_digest = ex.target->TakeAppliedPlanDigest(ex.scope);
      // Results inside the apply that are steps of their own (an Ansible
      // run's tasks on each host), recorded and audited before its outcome.
      for (const TaskStep& task : ex.target->TakeTaskSteps(ex.scope)) {
        v1::DeploymentStep t = NewStep(ex, v1::STEP_KIND_TASK, wave, "");
        *t.mutable_object() = task.object.ToProto();
        t.set_action(task.action);
        EndStep(t, task.result, task.message);
        s = SaveStep(ex, t, nullptr);
        if (!s.ok()) return s;
      }
      if (!applied_status.ok() && stopping_) return absl::AbortedError("deployer stopping");
      if (!applied_status.ok()) {
        EndStep(step, v1::STEP_RESULT_FAILED, std::string(applied_status.message()));
        s = SaveStep(ex, step, nullptr, plan_digest);
        if (!s.ok()) return s;
        StepSaved();
        *failure = absl::StrCat("wave ", wave, ": ", Describe(obj.key), ": ", applied_status.message());
        return absl::OkStatus();
      }
      wave_changed = true;
      EndStep(step, v1::STEP_RESULT_SUCCEEDED,
              plan_digest.empty() ? "applied" : absl::StrCat("applied plan ", plan_digest));
      AppliedChange change{ex.d.application_id(), ex.d.environment_id(), obj, false, ex.d.id()};
      SaveStepWithNext(ex, step, &change, plan_digest);
      applied[obj.key] = obj;
    }
    if (!wave_changed && ex.healthy_waves.count(wave) > 0) continue;  // Checked before the interruption.
    v1::DeploymentStep health = NewStep(
        ex, v1::STEP_KIND_HEALTH_CHECK, wave,
        absl::StrCat("waiting up to ", absl::FormatDuration(ex.health_timeout), " for ", objects.size(), " objects"));
    absl::Status s = SaveStep(ex, health, nullptr);
    if (!s.ok()) return s;
    StepSaved();
    std::string why;
    bool healthy = WaitHealthy(ex, objects, deadline, &why);
    if (stopping_ && !healthy) return absl::AbortedError("deployer stopping");
    EndStep(health, healthy ? v1::STEP_RESULT_SUCCEEDED : v1::STEP_RESULT_FAILED,
            healthy               ? absl::StrCat(objects.size(), " objects healthy")
            : ex.failed_for_good  ? absl::StrCat("failed: ", why)
                                  : absl::StrCat("not healthy within ", absl::FormatDuration(ex.health_timeout), ": ", why));
    if (!healthy) {
      s = SaveStep(ex, health, nullptr);
      if (!s.ok()) return s;
      StepSaved();
      *failure = absl::StrCat("wave ", wave, ": ", health.message());
      return absl::OkStatus();
    }
    SaveStepWithNext(ex, health, nullptr);
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
    StepSaved();
    absl::Status deleted = ex.target->Delete(ex.scope, obj, clock_->Now() + ex.health_timeout);
    if (!deleted.ok()) {
      EndStep(step, v1::STEP_RESULT_FAILED, std::string(deleted.message()));
      s = SaveStep(ex, step, nullptr);
      if (!s.ok()) return s;
      StepSaved();
      *failure = absl::StrCat("prune ", Describe(key), ": ", deleted.message());
      return absl::OkStatus();
    }
    EndStep(step, v1::STEP_RESULT_SUCCEEDED, "deleted");
    AppliedChange change{ex.d.application_id(), ex.d.environment_id(), obj, true, ex.d.id()};
    SaveStepWithNext(ex, step, &change);
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
  // Nothing else touches the pin, so only those two read it.
  bool rollback = d.kind() == v1::DEPLOYMENT_KIND_AUTO_ROLLBACK || d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK;
  bool approved_rollout = d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT && !ex.spec.decision().automatic();
  absl::StatusOr<v1::PinState> current = v1::PinState();
  if (rollback || approved_rollout) current = store_->GetPin(d.application_id(), d.environment_id());
  if (!current.ok()) return current.status();
  std::optional<v1::PinState> pin;
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
  } else if (approved_rollout && current->pinned()) {
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
  metrics_->DeploymentFinished(d, d.state(),
                               absl::ToDoubleSeconds(FromTimestamp(d.end_time()) - FromTimestamp(d.start_time())),
                               clock_->Now());
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
      const absl::Time now = clock_->Now();
      metrics_->DeploymentFinished(fx.d, v1::DEPLOYMENT_STATE_ROLLED_BACK,
                                   absl::ToDoubleSeconds(now - FromTimestamp(fx.d.start_time())), now);
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
  // Before the rollback is recorded: what succeeded before the failure.
  if (absl::Status s = SavePending(ex); !s.ok()) return s;
  v1::Deployment& d = ex.d;
  // The rollback is recorded (PENDING) before this deployment is marked
  // FAILED, so that a crash in between still leaves it to recovery.
  std::optional<std::pair<v1::Deployment, v1::Plan>> rollback;
  d.set_message(failure);
  // A target whose dry run is the plan (Terraform) applies only plans a
  // person approved: rolling back would apply a fresh plan nobody saw, so
  // the deployment stays FAILED and the next approved plan mends it.
  const bool approved_plans_only = ex.target != nullptr && ex.target->DryRunIsThePlan();
  if (approved_plans_only) {
    d.set_message(absl::StrCat(failure, "; not rolled back automatically: this target applies only approved "
                                         "plans (refresh the application and approve its new plan)"));
  }
  if (!approved_plans_only &&
      (d.kind() == v1::DEPLOYMENT_KIND_ROLLOUT || d.kind() == v1::DEPLOYMENT_KIND_ROLLBACK)) {
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
    if (now.ok() && now->state() == v1::DEPLOYMENT_STATE_FAILED) {
      metrics_->DeploymentFinished(*now, now->state(), seconds, clock_->Now());
    }
    return now;
  }
  metrics_->DeploymentFinished(d, d.state(), seconds, clock_->Now());
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

absl::StatusOr<v1::Deployment> DeploymentRunner::Run(v1::Deployment deployment, const v1::Plan& spec,
                                                     const DeploymentRecords::AppState* read) {
  std::string id = deployment.id();
  absl::StatusOr<v1::Deployment> out = RunOnce(std::move(deployment), spec, read);
  if (!out.ok()) NoteEndedAlive(id);
  return out;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::RunOnce(v1::Deployment deployment, const v1::Plan& spec,
                                                         const DeploymentRecords::AppState* read) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  ex.read = read;
  ex.hold_begin = true;
  absl::Status s = Begin(ex);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) return RecordRefused(ex.d, spec, std::string(s.message()));
    return s;
  }
  std::string failure;
  s = Execute(ex, &failure);
  if (!s.ok()) {
    SavePendingOnStop(ex);
    NoteStopped(ex, s);
    return s;
  }
  return Finish(ex, failure);
}

v1::Event DeploymentRunner::MarkRefused(v1::Deployment& d, const std::string& reason) {
  d.set_state(v1::DEPLOYMENT_STATE_FAILED);
  d.set_message(absl::StrCat("refused before anything changed: ", reason));
  *d.mutable_end_time() = ToTimestamp(clock_->Now());
  if (!d.has_start_time()) *d.mutable_start_time() = d.end_time();
  return DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, d, d.message(), "failed");
}

absl::StatusOr<v1::Deployment> DeploymentRunner::RecordRefused(v1::Deployment deployment, const v1::Plan& spec,
                                                               const std::string& reason) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  v1::Event failed = MarkRefused(ex.d, reason);
  absl::Status s = SaveDeployment(ex, {failed}, nullptr, nullptr);
  if (!s.ok()) return s;
  metrics_->DeploymentFinished(ex.d, ex.d.state(), 0, clock_->Now());
  return ex.d;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::CreateRefused(v1::Deployment deployment, const v1::Plan& spec,
                                                               const std::string& reason) {
  v1::Event failed = MarkRefused(deployment, reason);
  absl::Status s = store_->Create(deployment, spec, {failed});
  if (!s.ok()) return s;
  PublishRecord(deployment.id(), deployment);
  metrics_->DeploymentFinished(deployment, deployment.state(), 0, clock_->Now());
  return deployment;
}

void DeploymentRunner::StepSaved() {
  if (options_.test_crash_after_steps <= 0) return;
  if (++steps_saved_ != options_.test_crash_after_steps) return;
  logging::Warn("test failpoint: killing the deployer after a saved step",
                {{"steps", options_.test_crash_after_steps}});
  raise(SIGKILL);
}

void DeploymentRunner::NoteEndedAlive(const std::string& id) {
  ferry::MutexLock l(&mu_);
  ended_alive_.insert(id);
}

bool DeploymentRunner::TakeEndedAlive(const std::string& id) {
  ferry::MutexLock l(&mu_);
  return ended_alive_.erase(id) > 0;
}

void DeploymentRunner::SavePendingOnStop(Exec& ex) {
  // A stop between steps, or a write that failed (then these fail too and
  // recovery finds the objects live).
  absl::Status s = SavePending(ex);
  if (!s.ok()) {
    logging::Warn("cannot record the steps that succeeded before the deployment stopped",
                  {{"deployment", ex.d.id()}, {"error", s.ToString()}});
  }
}

void DeploymentRunner::NoteStopped(Exec& ex, const absl::Status& why) {
  if (!stopping_ || why.code() != absl::StatusCode::kAborted) return;
  // A deliberate stop is not an attempt that went wrong.
  RecoveryAttempts clean;
  clean.progress_mark = -1;
  absl::Status s = store_->SaveRecoveryAttempts(ex.d.id(), clean);
  if (!s.ok()) logging::Warn("cannot record a clean stop", {{"deployment", ex.d.id()}, {"error", s.ToString()}});
}

absl::Status DeploymentRunner::MarkInterrupted(Exec& ex, const v1::Deployment& with_steps) {
  for (v1::DeploymentStep st : with_steps.steps()) {
    if (st.result() != v1::STEP_RESULT_RUNNING) continue;
    // Not a verdict on the step: the deployment resumes after it.
    EndStep(st, v1::STEP_RESULT_SKIPPED,
            "interrupted: the deployer stopped while this step ran (not a failure); the deployment resumed after it");
    absl::Status s = SaveStep(ex, st, nullptr);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Recover(v1::Deployment deployment, const v1::Plan& spec) {
  std::string id = deployment.id();
  absl::StatusOr<v1::Deployment> out = RecoverOnce(std::move(deployment), spec);
  if (!out.ok()) NoteEndedAlive(id);
  return out;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::RecoverOnce(v1::Deployment deployment, const v1::Plan& spec) {
  Exec ex;
  ex.d = std::move(deployment);
  ex.spec = spec;
  if (IsTerminal(ex.d.state())) return ex.d;
  absl::StatusOr<v1::Deployment> with_steps = store_->Get(ex.d.id(), true);
  if (!with_steps.ok()) return with_steps.status();
  int64_t completed = 0;
  for (const v1::DeploymentStep& st : with_steps->steps()) {
    ex.next_seq = std::max(ex.next_seq, st.sequence() + 1);
    if (st.result() == v1::STEP_RESULT_SUCCEEDED && st.kind() != v1::STEP_KIND_RECOVERY) ++completed;
    if (st.result() == v1::STEP_RESULT_SUCCEEDED && st.kind() == v1::STEP_KIND_HEALTH_CHECK) {
      ex.healthy_waves.insert(st.wave());
    }
  }
  bool was_pending = ex.d.state() == v1::DEPLOYMENT_STATE_PENDING;
  ex.d.set_recovered(true);
  // The attempt that left it unfinished made progress when a step completed
  // since it began (a stop by Stop() always counts as progress).
  absl::StatusOr<RecoveryAttempts> last = store_->GetRecoveryAttempts(ex.d.id());
  if (!last.ok()) return last.status();
  RecoveryAttempts now;
  // A deployment still PENDING without a step was never begun (Begin makes
  // it RUNNING before any step): this is its first run, e.g. one recorded by
  // another replica of the group and left to this one, the lease holder.
  bool never_begun = was_pending && with_steps->steps().empty();
  bool progressed = completed > last->progress_mark || TakeEndedAlive(ex.d.id()) || never_begun;
  now.without_progress = progressed ? 0 : last->without_progress + 1;
  now.progress_mark = completed;
  if (options_.max_attempts_without_progress > 0 && now.without_progress >= options_.max_attempts_without_progress) {
    return Quarantine(ex, *with_steps, now.without_progress);
  }
  absl::Status s = store_->SaveRecoveryAttempts(ex.d.id(), now);
  if (!s.ok()) return s;
  s = Begin(ex);
  if (!s.ok()) {
    if (s.code() == absl::StatusCode::kInvalidArgument) return RecordRefused(ex.d, spec, std::string(s.message()));
    return s;
  }
  s = MarkInterrupted(ex, *with_steps);
  if (!s.ok()) return s;
  v1::DeploymentStep step =
      NewStep(ex, v1::STEP_KIND_RECOVERY, 0,
              was_pending ? "started from its record (its deployer restarted before starting it, or it was taken by "
                            "another replica of the environment's deployer group)"
                          : "deployer restarted while this deployment ran; resuming from its recorded steps");
  s = SaveStep(ex, step, nullptr);
  if (!s.ok()) return s;
  EndStep(step, v1::STEP_RESULT_SUCCEEDED,
          was_pending ? "nothing had changed; starting it now"
                      : absl::StrCat("resuming after ", completed,
                                     " completed steps; objects already live at this revision are not applied again"));
  s = SaveStep(ex, step, nullptr);
  if (!s.ok()) return s;
  if (!was_pending) {
    ex.resuming = true;
    metrics_->DeploymentResumed();
    logging::Info("resuming interrupted deployment",
                  {{"deployment", ex.d.id()}, {"completed_steps", completed}, {"attempts_without_progress", now.without_progress}});
  }
  std::string failure;
  s = Execute(ex, &failure);
  if (!s.ok()) {
    SavePendingOnStop(ex);
    NoteStopped(ex, s);
    return s;
  }
  return Finish(ex, failure);
}

absl::StatusOr<v1::Deployment> DeploymentRunner::Quarantine(Exec& ex, const v1::Deployment& with_steps, int attempts) {
  ex.d.set_deployer_id(options_.deployer_id);
  absl::Status s = MarkInterrupted(ex, with_steps);
  if (!s.ok()) return s;
  std::string last_step;
  for (const v1::DeploymentStep& st : with_steps.steps()) {
    if (st.kind() == v1::STEP_KIND_RECOVERY) continue;
    last_step = absl::StrCat(v1::StepKind_Name(st.kind()),
                             st.has_object() ? absl::StrCat(" ", ObjectKey::FromProto(st.object()).ToString()) : "",
                             " wave ", st.wave());
  }
  ex.d.set_state(v1::DEPLOYMENT_STATE_FAILED);
  ex.d.set_message(absl::StrCat(
      "quarantined after ", attempts, " attempts that made no progress: the deployer stopped each time before a step completed",
      last_step.empty() ? "" : absl::StrCat(" (last step: ", last_step, ")"),
      "; nothing was rolled back or pinned, and later plans for this application proceed"
      " (limit: --max-recovery-attempts=",
      options_.max_attempts_without_progress, ")"));
  *ex.d.mutable_end_time() = ToTimestamp(clock_->Now());
  if (!ex.d.has_start_time()) *ex.d.mutable_start_time() = ex.d.end_time();
  v1::Event e = DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, ex.d, ex.d.message(), "quarantined");
  auto& f = *e.mutable_details()->mutable_fields();
  f["quarantined"].set_bool_value(true);
  f["attempts_without_progress"].set_number_value(attempts);
  s = SaveDeployment(ex, {std::move(e)}, nullptr, nullptr);
  if (!s.ok()) return s;
  metrics_->DeploymentQuarantined();
  metrics_->DeploymentFinished(ex.d, ex.d.state(),
                               absl::ToDoubleSeconds(FromTimestamp(ex.d.end_time()) - FromTimestamp(ex.d.start_time())),
                               clock_->Now());
  logging::Error("deployment quarantined", {{"deployment", ex.d.id()},
                                            {"application", ex.d.application_id()},
                                            {"environment", ex.d.environment_id()},
                                            {"attempts", attempts},
                                            {"last_step", last_step}});
  return ex.d;
}

absl::StatusOr<v1::Deployment> DeploymentRunner::RecordUnprocessable(v1::Deployment deployment,
                                                                     const std::string& reason) {
  Exec ex;
  ex.d = std::move(deployment);
  absl::StatusOr<v1::Deployment> with_steps = store_->Get(ex.d.id(), true);
  if (with_steps.ok()) {
    ex.d = *with_steps;  // As far as it got.
    ex.d.clear_steps();
    for (const v1::DeploymentStep& st : with_steps->steps()) ex.next_seq = std::max(ex.next_seq, st.sequence() + 1);
  }
  if (IsTerminal(ex.d.state())) return ex.d;
  ex.d.set_deployer_id(options_.deployer_id);
  if (with_steps.ok()) {
    absl::Status s = MarkInterrupted(ex, *with_steps);
    if (!s.ok()) return s;
  }
  ex.d.set_state(v1::DEPLOYMENT_STATE_FAILED);
  ex.d.set_message(absl::StrCat("could not be processed: ", reason));
  *ex.d.mutable_end_time() = ToTimestamp(clock_->Now());
  if (!ex.d.has_start_time()) *ex.d.mutable_start_time() = ex.d.end_time();
  absl::Status s = SaveDeployment(
      ex, {DeploymentEvent(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, ex.d, ex.d.message(), "unprocessable")}, nullptr, nullptr);
  if (!s.ok()) return s;
  metrics_->DeploymentFinished(ex.d, ex.d.state(), 0, clock_->Now());
  logging::Error("deployment could not be processed",
                 {{"deployment", ex.d.id()}, {"application", ex.d.application_id()}, {"reason", reason}});
  return ex.d;
}

}  // namespace ferry::deployer
