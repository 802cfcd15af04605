#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"

namespace ferry::deployer::terraform {

// One resource instance a Terraform plan touches, as Ferry shows it.
struct ResourceChange {
  std::string address;  // e.g. "module.db.aws_instance.main[0]"
  // "create", "update", "delete", "replace" (delete and create, either
  // order), "read", "no-op".
  std::string action;
  // One line per changed attribute: "input: \"a\" -> \"b\"". Sensitive
  // values read "(sensitive)", values not known until apply "(known after
  // apply)".
  std::vector<std::string> attribute_diffs;
};

// The part of `terraform show -json <planfile>` a reviewer needs: the
// resource actions and attribute diffs, with sensitive values masked. Never
// holds the plan's variables, prior state or configuration (they carry
// secret values).
struct PlanView {
  std::vector<ResourceChange> changes;  // without no-ops, in the plan's order
  int to_add = 0, to_change = 0, to_destroy = 0;
  std::vector<std::string> output_changes;  // "name: before -> after", masked as above

  bool has_changes() const { return !changes.empty() || !output_changes.empty(); }
  // "Plan: 1 to add, 0 to change, 0 to destroy." then one block per
  // resource ("+ terraform_data.x (create)" and its attribute lines).
  std::string Text() const;
  // The same as JSON ({"summary":{...},"resourceChanges":[...],"outputChanges":[...]}).
  nlohmann::json ToJson() const;
};

// Reads `show -json` output. Masks every value Terraform marks sensitive
// (before_sensitive / after_sensitive) and every string that contains one of
// `secret_values` (values derived from a secret that Terraform does not mark,
// e.g. terraform_data's output of a sensitive input). INVALID_ARGUMENT when
// the text is not a plan in Terraform's JSON format.
absl::StatusOr<PlanView> ReadPlanJson(const std::string& show_json, const std::vector<std::string>& secret_values);

}  // namespace ferry::deployer::terraform
