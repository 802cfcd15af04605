#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "ferry/v1/deployer.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// The planner's side of the terraform target (services/deployer/terraform/
// terraform_target.h): an application rendered `terraform` is one
// `terraform.ferry.dev/v1` Stack object carrying its folder's files, and the
// Terraform plan the deployer made of it during planning (its dry run) is
// named in the Ferry plan, so the approved deployment applies exactly it.

// One Stack from the files of an application's folder (`app_path`,
// repository-relative) at a commit: every regular file under it but
// ferry.yaml and .terraform/, keyed by its path relative to the folder,
// plus the environment's `variables` and `secret_variables` (name ->
// {secretRef: {...}}, references only). INVALID_ARGUMENT (a render failure
// naming the file) for a symlink leaving the folder, a binary file, or a
// folder without a .tf or .tf.json file.
absl::StatusOr<v1::Manifest> RenderTerraformStack(const std::string& app_id, const std::string& app_path,
                                                  const std::vector<TreeEntry>& files,
                                                  const std::map<std::string, std::string>& variables,
                                                  const nlohmann::json& secret_variables);

// For each Stack among `manifests`, the digest of the Terraform plan the
// deployer made in its dry run (the live object's dry_run_json
// planDigest) as the Stack's spec.planDigest; a Stack whose dry run
// planned nothing to change, or made no plan, carries none (the deployer
// then refuses to apply it). Any planDigest the rendered object had is
// dropped first: only the deployer's own plan counts.
void PinTerraformPlans(std::vector<v1::Manifest>& manifests, const v1::LiveState& live);

// Puts the environment's input variables into each Stack of `app_id` (a
// render is per application, variables are per environment): the target's
// `variables` / `secret_variables` with the application's own
// (`applications.<app_id>`) over them, as spec.variables and
// spec.secretVariables ({name: {secretRef: {file|env|vault}}}, references
// only). Stacks in a target that is not terraform are left as rendered (the
// deployer refuses them there).
void AddTerraformVariables(std::vector<v1::Manifest>& manifests, const std::string& app_id,
                           const v1::DeployTarget& target);

// A Stack is planned by the deployer's dry run (`terraform plan`): when that
// failed (the live object's dry_run_error) or was not made (the deployer did
// not answer, or the Stack was too large to send), the Ferry plan cannot
// name a Terraform plan. A render failure (the plan is recorded as failed)
// naming the Stack and Terraform's message; OK when every Stack has its dry
// run.
absl::Status TerraformDryRunFailure(const std::vector<v1::Manifest>& manifests, const v1::LiveState& live);

}  // namespace ferry::planner
