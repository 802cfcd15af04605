#pragma once

#include <semaphore>

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock/clock.h"
#include "ferry/v1/planner.pb.h"

namespace ferry::planner {

struct CheckRunnerOptions {
  // Check commands run at once, shared with the renderer's tools
  // (--tool-processes); null: not bounded here.
  std::counting_semaphore<>* tool_slots = nullptr;
  // Scratch folders are made (and removed) under it (--check-scratch-root).
  std::string scratch_root = "/tmp";
  // Bytes of a check's output (stdout and stderr interleaved) kept in the
  // plan (--check-max-output-bytes); the rest is read and dropped.
  size_t max_output_bytes = 16 << 10;
  // Run checks in a network namespace of their own where the kernel allows
  // it (--check-isolate-network).
  bool isolate_network = true;
  // Largest file a check may write, and descriptors it may hold open.
  uint64_t file_size_limit_bytes = uint64_t{256} << 20;
  uint64_t open_files = 1024;
  // Run checks as this uid and gid (--check-user).
  std::optional<uid_t> uid;
  gid_t gid = 0;
  // Without uid: run checks as the planner's own user
  // (--checks-as-planner-user), which can read what that user can (its TLS
  // and token keys). Neither: every check is a FAILED run saying so, and
  // nothing runs.
  bool run_as_self = false;
};

// The checks of `app` that run for plans of environment `environment_id`
// (those without environment_ids, and those naming it), in order.
std::vector<v1::CheckCommand> ChecksFor(const v1::Application& app, const std::string& environment_id);

// One job: running an application's checks (ferry.yaml `checks:`,
// docs/checks.md) over a plan. Each check runs through common/process
// (RunProcess: clean environment, its own process group, bounded output)
// sandboxed (address-space limit = the check's memory limit, CPU limit =
// its timeout, file size and open-file limits, no network where the kernel
// allows, the configured uid), in a fresh scratch folder that holds only
// what the plan holds: the rendered manifests (manifests/NNNN-kind-name.json,
// secrets only as keyed digests or references) and plan.json (application,
// environment, repository, ref, sha, digest, the files). Never the
// repository, its secrets or the planner's environment. The folder is
// removed afterwards. Thread-safe (no state).
class CheckRunner {
 public:
  CheckRunner(const Clock* clock, CheckRunnerOptions options) : clock_(clock), options_(std::move(options)) {}

  // Runs every check of ChecksFor(app, plan.environment_id()) over `plan`
  // (its manifests), one after the other. A check that fails, cannot be
  // started, times out or hits a limit is a FAILED run saying why, not an
  // error; errors (UNAVAILABLE) are only the scratch folder's (cannot be
  // made or written: nothing ran).
  absl::StatusOr<std::vector<v1::CheckRun>> RunAll(const v1::Application& app, const v1::Plan& plan) const;

  // Runs one check over `plan`.
  absl::StatusOr<v1::CheckRun> Run(const v1::CheckCommand& check, const v1::Plan& plan) const;

 private:
  const Clock* clock_;
  const CheckRunnerOptions options_;
};

}  // namespace ferry::planner
