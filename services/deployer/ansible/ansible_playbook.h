#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/common.pb.h"
#include "services/deployer/ansible/ansible_results.h"
#include "services/deployer/host/workload_identity.h"

namespace ferry::deployer::ansible {

// The deployer's flags for Ansible runs.
struct PlaybookOptions {
  std::string ansible_playbook_path = "/usr/bin/ansible-playbook";  // --ansible-playbook-path
  std::string scratch_root = "/tmp";  // --ansible-scratch-dir: each run's folder is made (and removed) under it
  absl::Duration timeout = absl::Minutes(30);  // --ansible-timeout: one run, check or apply
  // The run's rlimits (common/process; 0 = none). Address space: Python and
  // its forked workers need some hundreds of MiB each.
  uint64_t memory_limit_mb = 4096;     // --ansible-memory-limit-mb
  uint64_t cpu_seconds = 1800;         // --ansible-cpu-seconds
  uint64_t file_size_limit_mb = 1024;  // --ansible-file-size-limit-mb
  size_t max_output_bytes = 16 << 20;  // --ansible-max-output-mb: the JSON result kept; more fails the run
  int forks = 5;                       // --ansible-forks
};

// Resolves a secret reference of the target config ("field" names where it
// is, for messages); never logs the value.
using SecretLookup = std::function<absl::StatusOr<std::string>(const v1::SecretRef& ref, const std::string& field)>;

// One ansible-playbook run of an AnsiblePlaybook object's spec.
struct PlaybookRun {
  const nlohmann::json* spec = nullptr;  // the object's spec (playbook, files)
  std::string playbook;                  // which playbook of spec.files
  bool check = false;                    // --check (nothing changes on the hosts)
  std::string environment_id;            // the default inventory is inventory/<environment id>
  absl::Duration time_left = absl::InfiniteDuration();  // until the caller's deadline; the run's timeout is the lesser
};

struct PlaybookOutcome {
  PlaybookResults results;  // every task result on every host (also of a failed run)
  int exit_code = 0;        // ansible-playbook's: 0 ok, 2 a host failed, 4 a host unreachable
};

// Runs ansible-playbook on the object's files in a fresh scratch folder,
// with the environment's inventory, connection and variables, as `who`,
// within the options' time, memory, CPU and file-size limits, output
// bounded, the environment explicit (nothing of the deployer's), and host
// keys checked for ssh. Secret values (secret_vars, the ssh key) are written
// only to 0600 files of the scratch folder, passed by file, scrubbed from
// every message and result, and removed with the folder. Errors:
// INVALID_ARGUMENT for a bad spec (a path leaving the folder, no such
// playbook or inventory), a secret that cannot be read, or ansible refusing
// the playbook (syntax: its message, secrets scrubbed); DEADLINE_EXCEEDED
// and RESOURCE_EXHAUSTED for a run stopped by the timeout or a limit;
// FAILED_PRECONDITION when ansible-playbook is missing. A run whose hosts
// fail is a PlaybookOutcome (exit code 2 or 4), not an error.
class PlaybookRunner {
 public:
  PlaybookRunner(PlaybookOptions options, v1::AnsibleTargetConfig config, host::WorkloadIdentity who,
                 SecretLookup secrets);
  absl::StatusOr<PlaybookOutcome> Run(const PlaybookRun& run) const;

  // Checks the spec's shape and file paths (what Prepare refuses).
  static absl::Status CheckSpec(const nlohmann::json& object);

 private:
  absl::StatusOr<std::map<std::string, std::string>> ResolveSecrets() const;

  const PlaybookOptions options_;
  const v1::AnsibleTargetConfig config_;
  const host::WorkloadIdentity who_;
  const SecretLookup secrets_;
};

// `text` with every secret value replaced by "<secret>".
std::string Scrub(std::string text, const std::vector<std::string>& secrets);

}  // namespace ferry::deployer::ansible
