#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

// Each function returns INVALID_ARGUMENT whose message starts with the
// offending field, e.g. "application.environment_ids[0]: unknown environment
// \"prod\"".

// A lowercase DNS label of at most 63 characters.
absl::Status ValidateId(const std::string& id, const std::string& field);

// Checks and normalises an application in place (path, ref). `environments`
// are the environment ids that exist.
absl::Status ValidateApplication(v1::Application& app, const std::set<std::string>& environments);

// Checks that every dependsOn names a known application and that the graph
// has no cycle. `apps` maps every application id (after the change) to its
// definition.
absl::Status ValidateDependsOn(const std::map<std::string, v1::Application>& apps);

// Checks a host target's runAs as far as the planner can (the deployer
// resolves the names on its machine and applies its own flags): a user
// name or uid is required, names are account names, and root (user or group
// "root" or 0) needs allowRoot. INVALID_ARGUMENT naming the field.
absl::Status ValidateRunAs(const v1::HostTargetConfig& host);

// Checks an environment (including ValidateRunAs). `environments` maps every environment id (after the
// change) to its definition, for promote_from. `windows` bounds its sync
// windows (count, schedule length).
// An environment's DeployTarget: a host target with an absolute root_dir, or a
// Kubernetes target with an absolute kubeconfig path (or in_cluster) and a
// DNS-label namespace. INVALID_ARGUMENT names the field.
absl::Status ValidateTarget(const v1::DeployTarget& target);

absl::Status ValidateEnvironment(const v1::Environment& env, const std::map<std::string, v1::Environment>& environments,
                                 const SyncWindowLimits& windows = SyncWindowLimits());

// Bounds of Environment.required_checks (ferry.yaml `requiredChecks`).
inline constexpr int kMaxRequiredChecks = 50;
inline constexpr size_t kMaxCheckNameBytes = 255;
// Each name 1 to kMaxCheckNameBytes bytes, no control character, no leading
// or trailing space, none listed twice; at most kMaxRequiredChecks.
// INVALID_ARGUMENT naming the index.
absl::Status ValidateRequiredChecks(const v1::Environment& env);

// Bounds of Application.checks (ferry.yaml `checks:`, docs/checks.md).
inline constexpr int kMaxCheckCommands = 20;
inline constexpr int kMaxCheckArgs = 256;
inline constexpr size_t kMaxCheckArgBytes = 4096;
inline constexpr int64_t kMinCheckTimeoutSeconds = 1;
inline constexpr int64_t kMaxCheckTimeoutSeconds = 30 * 60;
inline constexpr int64_t kDefaultCheckTimeoutSeconds = 60;
inline constexpr int64_t kMinCheckMemoryBytes = int64_t{16} << 20;
inline constexpr int64_t kMaxCheckMemoryBytes = int64_t{64} << 30;
inline constexpr int64_t kDefaultCheckMemoryBytes = int64_t{1} << 30;
// Each check: a name as for required checks, unique in the application; an
// argv of 1 to kMaxCheckArgs strings, the program absolute (normalised: no
// "." or ".." component) or a bare name, no NUL or control characters in
// the program; environment_ids among the application's; timeout within
// [kMinCheckTimeoutSeconds, kMaxCheckTimeoutSeconds] (unset: the default,
// filled in), memory within [kMinCheckMemoryBytes, kMaxCheckMemoryBytes]
// (0: the default, filled in). INVALID_ARGUMENT naming the field, e.g.
// "application.checks[0].timeout: ...".
absl::Status ValidateCheckCommands(v1::Application& app);

// The application ids in dependency order (dependencies first); ties by id.
std::vector<std::string> TopologicalOrder(const std::map<std::string, v1::Application>& apps);

}  // namespace ferry::planner
