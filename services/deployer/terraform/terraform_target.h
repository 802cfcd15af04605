#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock/clock.h"
#include "services/deployer/host/workload_policy.h"
#include "services/deployer/secrets/secret_resolver.h"
#include "services/deployer/target.h"
#include "services/deployer/terraform/saved_plan_store.h"
#include "services/deployer/terraform/terraform_stack.h"

namespace ferry::deployer::terraform {

inline constexpr char kStackGroup[] = "terraform.ferry.dev";
inline constexpr char kStackKind[] = "Stack";

// What the terraform target needs besides the objects: the binary, the
// scratch root, the state backend, the run-as user and limits (`base`:
// variables are taken from each Stack object), where saved plans are kept,
// and the resolver of secret variables.
struct TerraformTargetOptions {
  RunnerSettings base;
  // The pg backend's schema of environment E is schema_prefix + E (with
  // characters other than [a-z0-9_] as '_'): one state per environment.
  std::string schema_prefix = "ferry_tf_";
  SavedPlanStore* plans = nullptr;                       // required
  const secrets::SecretResolver* secrets = nullptr;      // null: secretVariables are refused
  // The clock of the deadlines Apply is given (the deployment runner's);
  // null: the system clock.
  const Clock* clock = nullptr;
};

// The terraform target: deploys `terraform.ferry.dev/v1` Stack objects, each
// one application's Terraform/OpenTofu configuration:
//
//   apiVersion: terraform.ferry.dev/v1
//   kind: Stack
//   metadata: {name: <application>}
//   spec:
//     files: {main.tf: "...", ...}          # the application's folder at the commit
//     variables: {region: "eu-west-1"}      # per environment, from ferry.yaml
//     secretVariables: {token: {secretRef: {env: FERRY_SECRET_TOKEN}}}
//     planDigest: sha256:...                 # optional: the approved plan
//
// DryRun is planning: init + plan -out in a scratch copy; the plan file is
// kept in the SavedPlanStore and, when terraform would change something, the
// result carries top-level planDigest and plan (resource actions and
// attribute diffs, sensitive values masked); the planner copies planDigest
// into the planned object's
// spec.planDigest (services/planner/terraform_plans.h), so the approved
// Ferry plan names the Terraform plan. Apply runs apply of exactly that
// saved plan; none named or no longer kept: FAILED_PRECONDITION, never a
// blind apply; a plan the state moved past:
// FAILED_PRECONDITION "plan is stale" (nothing applied; re-plan). Applying
// again a configuration whose plan was applied already (the drift
// controller's self-heal, which runs only when the environment allows it, or
// a rollback) plans afresh and applies that plan. Observe is the drift check
// (plan -detailed-exitcode). Delete refuses: destroying infrastructure is not
// a prune. Thread-safe; the pg backend's lock serialises runs on one state.
class TerraformTarget final : public Target {
 public:
  explicit TerraformTarget(TerraformTargetOptions options) : options_(std::move(options)) {}

  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  absl::StatusOr<DryRunResult> DryRun(const AppScope& app, const TargetObject& desired) override;

  // A failed `terraform plan` fails the Ferry plan (never dropped).
  bool DryRunIsThePlan() const override { return true; }
  // The digest of the plan the last Apply ran or tried (stale, failed), for
  // its step and audit event; cleared by the call.
  std::string TakeAppliedPlanDigest(const AppScope& app) override;

  // The digest of the plan the last Apply ran (for the audit trail), "" if none.
  std::string LastAppliedDigest(const AppScope& app);

 private:
  struct Parsed {
    nlohmann::json doc;
    Configuration files;
    std::string plan_digest;
  };
  absl::StatusOr<Parsed> Parse(const TargetObject& object) const;
  absl::StatusOr<Stack> StackFor(const AppScope& app, const nlohmann::json& doc) const;

  TerraformTargetOptions options_;
  ferry::Mutex mu_;
  std::map<std::string, std::string> last_applied_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> attempted_ ABSL_GUARDED_BY(mu_);
};

// The terraform target of each environment's configuration (a
// TerraformTargetConfig): `defaults` are the deployer's (binary, scratch
// root, the pg backend's connection from --terraform-state-url, limits);
// the environment chooses the state backend (pg or its own configured one),
// whom terraform runs as (the host target's runAs rules, `workloads`) and
// tighter or looser limits. Variables come with each Stack (the planner put
// them there). Thread-safe.
class TerraformTargetFactory final : public TargetFactory {
 public:
  TerraformTargetFactory(TerraformTargetOptions defaults, host::WorkloadPolicy workloads)
      : defaults_(std::move(defaults)), workloads_(std::move(workloads)) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  const TerraformTargetOptions defaults_;
  const host::WorkloadPolicy workloads_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<TerraformTarget>> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::terraform
