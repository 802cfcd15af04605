#pragma once

// What the flow tests of the infrastructure targets (Ansible, Terraform)
// share: the plan the planner would hand over, and the deployer's run of it
// once approved.

#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/deployment_runner.h"
#include "tests/deployer/fake_deployment_store.h"

namespace ferry::deployer::testing {

// A manually approved plan `id` of `application` to environment "dev" at the
// commit of 40 `sha`s, holding `manifest`, for `target`.
inline v1::Plan FlowPlan(const std::string& id, const std::string& application, char sha,
                         const v1::Manifest& manifest, const v1::DeployTarget& target,
                         int health_timeout_seconds) {
  v1::Plan p;
  p.set_id(id);
  p.set_application_id(application);
  p.set_environment_id("dev");
  p.mutable_target_revision()->set_repository_id("repo");
  p.mutable_target_revision()->set_sha(std::string(40, sha));
  p.set_manifests_digest(absl::StrCat("sha256:", std::string(64, sha)));
  *p.add_manifests() = manifest;
  *p.mutable_target() = target;
  p.mutable_health_timeout()->set_seconds(health_timeout_seconds);
  p.mutable_decision()->set_automatic(false);
  return p;
}

// `spec` approved by alice: its deployment, run to the end as the deployer
// runs it (through `targets`), as stored at the end.
inline v1::Deployment RunApprovedFlowPlan(const v1::Plan& spec, FakeDeploymentStore* store, TargetFactory* targets,
                                          DeploymentNotifier* notifier, DeployerMetrics* metrics,
                                          const Clock* clock) {
  v1::Deployment d;
  d.set_id("dep-" + spec.id());
  d.set_application_id(spec.application_id());
  d.set_environment_id(spec.environment_id());
  d.set_plan_id(spec.id());
  d.set_kind(v1::DEPLOYMENT_KIND_ROLLOUT);
  d.set_state(v1::DEPLOYMENT_STATE_PENDING);
  *d.mutable_revision() = spec.target_revision();
  d.set_manifests_digest(spec.manifests_digest());
  d.mutable_actor()->set_id("alice");
  EXPECT_TRUE(store->Create(d, spec, {}).ok());
  RunnerOptions o;
  o.deployer_id = "test";
  o.health_poll = absl::Milliseconds(1);
  DeploymentRunner runner(store, targets, notifier, metrics, clock, o);
  absl::StatusOr<v1::Deployment> done = runner.Run(d, spec);
  EXPECT_TRUE(done.ok()) << done.status();
  return done.value_or(v1::Deployment());
}

}  // namespace ferry::deployer::testing
