#include "services/deployer/plan_consumer.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/audit_events.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/plan_intake.h"
#include "common/status/transient.h"

namespace ferry::deployer {

std::string GroupOf(const v1::Plan& plan) {
  return plan.deployer_group().empty() ? std::string("default") : plan.deployer_group();
}

concurrency::BackoffPolicy PlanConsumer::RetryPolicy(const PlanConsumerOptions& options) {
  concurrency::BackoffPolicy policy;
  policy.initial = options.plan_retry;
  policy.max = absl::Seconds(30);
  return policy;
}

PlanConsumer::PlanConsumer(DeploymentRecords* records, PlanCursorStore* cursor, PlanSource* plans,
                           TargetFactory* targets, FetcherFactory fetchers, DeploymentScheduler* scheduler,
                           DeploymentStarter* starter, const Clock* clock, PlanConsumerOptions options,
                           DeployerMetrics* metrics)
    : records_(records),
      cursor_(cursor),
      plans_(plans),
      targets_(targets),
      fetchers_(std::move(fetchers)),
      scheduler_(scheduler),
      starter_(starter),
      clock_(clock),
      options_(std::move(options)),
      metrics_(metrics) {}

absl::StatusOr<absl::Duration> PlanConsumer::ConsumeStream() {
  if (scheduler_->stopping()) return absl::InfiniteDuration();
  absl::StatusOr<std::string> cursor = cursor_->GetCursor();
  if (!cursor.ok()) return cursor.status();
  // Plans are handed off several at a time (one at a time per application
  // and environment); the saved cursor only moves over plans whose hand-off
  // finished.
  PlanIntake intake(
      options_.intake_concurrency,
      [&](const std::string& position) {
        absl::Status saved = cursor_->SaveCursor(position);
        if (!saved.ok()) logging::Warn("cannot save plan cursor", {{"error", saved.ToString()}});
      },
      options_.cursor_save_interval);
  absl::Status s = plans_->Watch(*cursor, [&](const std::string& next, const v1::Plan& plan) {
    // Another group's environment: its deployers take it (the cursor is
    // this group's, so skipping loses nothing).
    if (GroupOf(plan) != options_.deployer_group) return true;
    std::string key = plan.application_id() + "/" + plan.environment_id();
    return intake.Submit(key, next, [this, plan] { return TakePlan(plan); });
  });
  absl::Status intake_failure = intake.Drain();
  if (scheduler_->stopping()) return absl::InfiniteDuration();
  if (!intake_failure.ok()) return intake_failure;
  logging::Info("plan stream ended; reconnecting", {{"status", s.ToString()}});
  return options_.plan_retry;
}

absl::Status PlanConsumer::TakePlan(const v1::Plan& plan) {
  concurrency::Backoff backoff(RetryPolicy(options_));
  int lasting_failures = 0;
  for (;;) {
    absl::StatusOr<std::string> handled = HandlePlan(plan);
    if (handled.ok()) return absl::OkStatus();
    absl::StatusCode code = handled.status().code();
    // A malformed plan will never be taken: skip it rather than block the stream.
    if (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kFailedPrecondition) {
      logging::Warn("plan skipped", {{"plan", plan.id()}, {"error", handled.status().ToString()}});
      return absl::OkStatus();
    }
    // An error that is not an outage, again and again: this plan is poison.
    // Give up on it (and say so to the planner) so the plans behind it flow.
    if (!status::IsTransient(handled.status()) && ++lasting_failures >= options_.plan_attempts) {
      logging::Error("plan not taken; giving up on it",
                     {{"plan", plan.id()}, {"attempts", lasting_failures}, {"error", handled.status().ToString()}});
      GiveUp(plan, "", absl::StrCat("the deployer could not take this plan (", lasting_failures,
                                    " attempts): ", handled.status().message()));
      return absl::OkStatus();
    }
    absl::Duration delay = backoff.Next();
    logging::Warn("plan not taken; retrying",
                  {{"plan", plan.id()}, {"error", handled.status().ToString()}, {"retry_in", absl::FormatDuration(delay)}});
    if (scheduler_->SleepUnlessStopping(delay)) {
      return handled.status();  // Delivered again from the saved cursor after a restart.
    }
  }
}

absl::StatusOr<std::string> PlanConsumer::HandlePlan(const v1::Plan& plan) {
  if (plan.id().empty()) return absl::InvalidArgumentError("plan.id is required");
  absl::Status ids = RequireIds(plan.application_id(), plan.environment_id());
  if (!ids.ok()) return ids;
  if (GroupOf(plan) != options_.deployer_group) {
    return absl::FailedPreconditionError(absl::StrCat("environment \"", plan.environment_id(),
                                                      "\" belongs to deployer group \"", GroupOf(plan),
                                                      "\"; this deployer is of group \"", options_.deployer_group,
                                                      "\""));
  }
  // Replicas: the environment becomes this group's, and this replica's when
  // nobody holds it; the holder runs what is recorded below.
  if (options_.leases != nullptr) {
    absl::Status claimed = options_.leases->Claim(plan.environment_id());
    if (!claimed.ok()) return claimed;
  }
  std::string id = "dep-" + plan.id();
  // Its record and the pin in one read (issue #23).
  DeploymentRecords::AppStateRead what;
  what.deployment_id = id;
  absl::StatusOr<DeploymentRecords::AppState> state =
      records_->ReadAppState(plan.application_id(), plan.environment_id(), what);
  if (!state.ok()) return state.status();
  if (state->deployment) return id;  // Redelivered: already recorded (and recovered or reported from there).
  const v1::PinState& pin = state->pin;
  if (pin.pinned() && plan.decision().automatic() && plan.trigger() != v1::PLAN_TRIGGER_ROLLBACK) {
    logging::Info("skipping automatically approved plan: application is pinned",
                  {{"plan", plan.id()}, {"application", plan.application_id()}, {"pinned_sha", pin.sha()}});
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
  if (!started.ok() && !status::IsTransient(started.status()) &&
      started.status().code() != absl::StatusCode::kAlreadyExists) {
    // It cannot be started (e.g. its spec cannot be stored): record it
    // failed with the reason, without its manifests, and move on.
    std::string reason = absl::StrCat("could not be started: ", started.status().message());
    v1::Plan bare = plan;
    bare.clear_manifests();
    absl::StatusOr<v1::Deployment> failed = starter_->Refuse(d, bare, reason);
    if (!failed.ok() && status::IsTransient(failed.status())) return failed.status();
    if (metrics_ != nullptr) metrics_->PlanNotStarted();
    logging::Error("plan could not be started; recorded failed",
                   {{"plan", plan.id()}, {"deployment", id}, {"error", started.status().ToString()}});
    if (!failed.ok()) GiveUp(plan, id, reason);  // Not even the failure could be recorded.
    return id;
  }
  // The same plan taken twice at once (the plan stream and a Rollback call
  // that asked the planner for it): the first one recorded it.
  if (started.status().code() == absl::StatusCode::kAlreadyExists) return id;
  if (!started.ok()) return started.status();
  return id;
}

void PlanConsumer::GiveUp(const v1::Plan& plan, const std::string& deployment_id, const std::string& reason) {
  if (metrics_ != nullptr && deployment_id.empty()) metrics_->PlanNotStarted();
  if (plans_ == nullptr) return;
  v1::ReportPlanResultRequest req;
  req.set_plan_id(plan.id());
  req.set_deployment_id(deployment_id);
  req.set_state(v1::PLAN_STATE_FAILED);
  req.set_message(reason);
  *req.mutable_live_revision() = plan.source_revision();
  absl::Status s = plans_->ReportResult(req);
  if (!s.ok()) logging::Warn("cannot report a plan given up on", {{"plan", plan.id()}, {"error", s.ToString()}});
}

absl::StatusOr<v1::Deployment> PlanConsumer::StartDeployment(v1::Deployment d, const v1::Plan& plan) {
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
  if (!refused.empty()) return starter_->Refuse(d, spec, refused);
  absl::Status launched = starter_->Launch(d, spec);
  if (!launched.ok()) return launched;
  return d;
}

}  // namespace ferry::deployer
