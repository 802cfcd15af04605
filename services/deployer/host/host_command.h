#pragma once

#include <string>

#include "absl/time/time.h"
#include "common/process/run_process.h"
#include "services/deployer/host/workload_identity.h"

namespace ferry::deployer::host {

// How the host target runs a command to completion (validate and reload
// commands, exec health probes). The commands come from Git, so they get a
// minimal environment (PATH, LANG=C.UTF-8, HOME = `workdir`), never the
// deployer's own, which may hold its database URL; they run in `workdir`,
// stdout and stderr together, the first 64 KiB kept, their process group
// killed after `timeout`; as `who` when it names a uid.
inline process::ProcessOptions HostCommandOptions(absl::Duration timeout, const std::string& workdir,
                                                  const WorkloadIdentity& who = {}) {
  process::ProcessOptions options;
  options.env = process::MinimalEnvironment(workdir);
  options.working_dir = workdir;
  options.timeout = timeout;
  options.merge_stderr_into_stdout = true;
  options.max_stdout_bytes = 64 << 10;
  if (who.uid.has_value()) {
    options.sandbox.emplace();
    options.sandbox->uid = who.uid;
    options.sandbox->gid = who.gid;
  }
  return options;
}

// "timed out", "killed by signal N" or "exited N", for messages.
inline std::string DescribeEnd(const process::ProcessResult& r) {
  if (r.timed_out) return "timed out";
  if (r.term_signal != 0) return "killed by signal " + std::to_string(r.term_signal);
  return "exited " + std::to_string(r.exit_code);
}

}  // namespace ferry::deployer::host
