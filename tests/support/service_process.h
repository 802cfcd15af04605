#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ferry::testing {

// A Ferry service binary run as a child process on free loopback ports
// (port 0, read back from --port-file). Output goes to a log file.
class ServiceProcess {
 public:
  // Starts build/bin/<binary> with `args` plus --grpc-address,
  // --metrics-address and --port-file, and waits until it reports SERVING on
  // grpc.health.v1. Returns the tail of its log when it exits or times out.
  // Unless `args` has --tls-cert-file or --insecure-plaintext, the service
  // runs with --insecure-plaintext and, unless `args` has
  // --access-policy-file or --insecure-no-auth, --insecure-no-auth (plaintext
  // and open, as tests before TLS and access control expect); with
  // --tls-ca-file the health check is made over TLS, trusting that CA. A
  // ferry-deployer started as root without --workload-user gets
  // --insecure-workloads-as-root (workloads as the test's uid, as before
  // runAs).
  static absl::StatusOr<std::unique_ptr<ServiceProcess>> Start(const std::string& binary,
                                                               std::vector<std::string> args,
                                                               absl::Duration timeout = absl::Seconds(30));
  ~ServiceProcess();

  std::string grpc_target() const;
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // The --tls-ca-file it was started with; "" when plaintext.
  const std::string& tls_ca_file() const { return tls_ca_file_; }
  std::string Log() const;

  // SIGTERM, then waits up to `timeout`. Returns the exit code, or an error
  // (after SIGKILL) if it did not exit in time or died from a signal.
  absl::StatusOr<int> Stop(absl::Duration timeout = absl::Seconds(15));
  // SIGKILL and reap.
  void Kill();

 private:
  ServiceProcess() = default;
  pid_t pid_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::string dir_;
  std::string log_path_;
  std::string tls_ca_file_;
};

// Polls grpc.health.v1.Health/Check on `target` until it answers SERVING;
// over TLS trusting the CA in `tls_ca_file` when given.
absl::Status WaitForServing(const std::string& target, absl::Duration timeout, const std::string& tls_ca_file = "");

struct CommandResult {
  int exit_code = -1;   // -1 when killed by a signal or timed out
  std::string output;   // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) to completion, or kills it after `timeout`.
CommandResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(60),
                         const std::vector<std::string>& extra_env = {});

// A free loopback TCP port (bound and released), for a peer whose address
// must be known before it starts.
int FreePort();

// Absolute path of a Ferry binary in the build tree.
std::string BinaryPath(const std::string& name);

}  // namespace ferry::testing
