#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/deployer/host/workload_identity.h"

namespace ferry::deployer::host {

struct ProbeResult {
  bool ok = false;
  std::string message;
};

// HTTP GET http://127.0.0.1:<port><path>; ok when the status equals
// `expected_status`.
ProbeResult ProbeHttp(int port, const std::string& path, int expected_status, absl::Duration timeout);

// TCP connect to 127.0.0.1:<port>.
ProbeResult ProbeTcp(int port, absl::Duration timeout);

// Runs `argv`; ok when it exits 0.
ProbeResult ProbeExec(const std::vector<std::string>& argv, absl::Duration timeout, const std::string& workdir,
                      const WorkloadIdentity& who = {});

// A free loopback TCP port, or 0.
int PickFreePort();

}  // namespace ferry::deployer::host
