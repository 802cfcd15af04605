#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::deployer::terraform {

// How Terraform (or OpenTofu) runs for one environment.
struct RunnerSettings {
  std::string binary;                 // absolute path of terraform or tofu (FindTerraformBinary)
  std::string scratch_root = "/tmp";  // workspaces are made (and removed) under it
  // State in PostgreSQL through Terraform's own `pg` backend: the
  // connection string (given as PG_CONN_STR, never on a command line or in a
  // file) and the schema of this environment (one per environment; the
  // backend's own advisory locks serialise runs). Empty conn string: the
  // backend the configuration declares, as the user configured it.
  std::string pg_conn_str;
  std::string pg_schema;
  // Input variables, given as TF_VAR_<name>. Secret ones are masked in every
  // output, log and plan view.
  std::map<std::string, std::string> variables;
  std::map<std::string, std::string> secret_variables;
  // Whom terraform runs as (the host target's runAs, resolved); unset: the
  // deployer's own user.
  std::optional<uid_t> uid;
  gid_t gid = 0;
  // Limits of each terraform run (address space, CPU, wall clock, output kept).
  uint64_t memory_limit_mb = 4096;
  uint64_t cpu_seconds = 600;
  absl::Duration timeout = absl::Minutes(10);
  size_t max_output_bytes = 256 << 10;      // kept of each run's output (logs, messages)
  size_t max_plan_json_bytes = 64 << 20;    // `show -json` of a plan, read whole or refused
  absl::Duration lock_timeout = absl::Seconds(30);  // waiting for the backend's state lock
};

// One terraform run's outcome: output bounded and with secret values masked.
struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr interleaved
  std::string failure;  // why it did not exit: timeout, a limit, a signal; empty when it exited
  enum class Ended { kExited, kTimedOut, kLimit, kSignal };
  Ended ended = Ended::kExited;
  bool truncated = false;  // output was cut at the bound
};

// The terraform (or tofu) to use: `configured` when set, else `terraform`
// on PATH (kDefaultCommandPath), else `<tools_dir>/bin/tofu` (built by
// scripts/install-terraform). NOT_FOUND names all three.
absl::StatusOr<std::string> FindTerraformBinary(const std::string& configured, const std::string& tools_dir);

// A scratch copy of a configuration (a folder of .tf files at one commit)
// where terraform runs, removed on destruction. Files are written owned by
// the run-as user, so terraform can write its .terraform folder and plan
// files and nothing outside.
class Workspace {
 public:
  // `files`: path relative to the configuration folder -> content. Paths
  // that are absolute, climb out (".."), or write .terraform are refused
  // (INVALID_ARGUMENT naming the path).
  static absl::StatusOr<Workspace> Make(const RunnerSettings& settings, const std::map<std::string, std::string>& files);
  Workspace(Workspace&& o) noexcept;
  Workspace& operator=(Workspace&&) = delete;
  ~Workspace();
  const std::string& dir() const { return dir_; }

  // Writes a file (e.g. a saved plan) into the workspace, owned by the run-as user.
  absl::Status Write(const std::string& name, const std::string& content) const;
  absl::StatusOr<std::string> Read(const std::string& name) const;

  // Runs `binary args...` in the workspace: a clean environment (PATH,
  // HOME=the workspace, TF_IN_AUTOMATION, TF_INPUT=0, no CLI configuration
  // file, the variables, PG_CONN_STR/PG_SCHEMA_NAME), as the run-as user,
  // with the limits. A non-zero exit is a result, not an error.
  // `redact`: mask secret values in the output (off only for output that is
  // parsed and masked by value, e.g. `show -json`, where replacing text
  // could break the document).
  // `max_output`: bytes kept; 0: the settings' max_output_bytes.
  absl::StatusOr<RunResult> Run(const std::vector<std::string>& args, bool redact = true, size_t max_output = 0) const;

  // `text` with every secret (secret variables, the connection string) masked.
  std::string Redact(std::string text) const;

 private:
  Workspace(const RunnerSettings& settings, std::string dir);
  const RunnerSettings* settings_;
  std::string dir_;
};

}  // namespace ferry::deployer::terraform
