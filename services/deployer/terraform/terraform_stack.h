#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/deployer/terraform/terraform_plan_view.h"
#include "services/deployer/terraform/terraform_runner.h"

namespace ferry::deployer::terraform {

// A configuration: the application's folder of .tf files at one commit
// (path relative to the folder -> content).
using Configuration = std::map<std::string, std::string>;

// A saved plan: `plan -out`'s file, which `apply` runs exactly, and what it
// shows. The file holds variable values (secret ones included, as
// Terraform writes them): it is kept with the deployer's records, never shown
// or audited; its digest is.
struct SavedPlan {
  std::string plan_file;
  std::string digest;  // "sha256:<hex>" of plan_file
  PlanView view;
  std::string log;     // init and plan output, masked
};

struct ApplyResult {
  std::string digest;  // of the plan file applied
  std::string log;     // init and apply output, masked
};

struct DriftResult {
  bool drifted = false;  // `plan -detailed-exitcode` exited 2
  PlanView view;         // what applying the configuration again would change
  std::string log;
};

// Terraform's plan, apply and drift check of one environment's
// configuration, each in a fresh scratch copy (terraform_runner.h). Errors
// carry terraform's output (masked):
//   INVALID_ARGUMENT   the configuration does not init or plan (syntax, unknown variable)
//   FAILED_PRECONDITION "plan is stale": the state changed since the plan was
//                      made (another apply ran); nothing was applied; re-plan
//   UNAVAILABLE        the state lock is held by another run
//   DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED  the time or a limit was hit
//   INTERNAL           apply failed part way (the state records what was done)
// Stateless and thread-safe; the backend's lock serialises runs on one state.
class Stack {
 public:
  explicit Stack(RunnerSettings settings) : settings_(std::move(settings)) {}

  // `init`, then `plan -out`, then `show -json` of the saved plan.
  absl::StatusOr<SavedPlan> Plan(const Configuration& config) const;

  // `init`, then `apply` of exactly `plan_file` (whose digest must be
  // `digest`: anything else is refused before terraform runs). Each run
  // ends within `timeout` as well as the settings' own.
  absl::StatusOr<ApplyResult> Apply(const Configuration& config, const std::string& plan_file,
                                    const std::string& digest,
                                    absl::Duration timeout = absl::InfiniteDuration()) const;

  // `init`, then `plan -detailed-exitcode`: drift when the live
  // infrastructure (as refreshed into the plan) no longer matches the
  // configuration as applied.
  absl::StatusOr<DriftResult> CheckDrift(const Configuration& config) const;

  const RunnerSettings& settings() const { return settings_; }

 private:
  absl::StatusOr<Workspace> Init(const Configuration& config, const RunnerSettings& settings, std::string& log) const;
  std::vector<std::string> SecretValues() const;
  // `show -json` of the saved plan in `ws`, read into its view (sensitive and
  // secret values masked).
  absl::StatusOr<PlanView> ShowSavedPlan(Workspace& ws) const;

  RunnerSettings settings_;
};

// "sha256:<hex>" of a plan file.
std::string PlanDigest(const std::string& plan_file);

}  // namespace ferry::deployer::terraform
