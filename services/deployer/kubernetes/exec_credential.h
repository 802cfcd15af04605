#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"

namespace ferry::deployer::kubernetes {

// A kubeconfig user's `exec` credential plugin (client.authentication.k8s.io
// v1 or v1beta1, as `aws eks get-token` and gke-gcloud-auth-plugin are).
struct ExecPlugin {
  std::string user;         // The kubeconfig user's name, for messages.
  std::string api_version;  // client.authentication.k8s.io/v1 or /v1beta1.
  std::string command;      // A path (a relative one made absolute against the kubeconfig's folder) or a bare name.
  std::vector<std::string> args;
  std::vector<std::string> env;  // "NAME=value" from the kubeconfig's env list.
  bool provide_cluster_info = false;
};

// What a plugin run gave: a bearer token, or a client certificate and key
// (PEM), and when it expires (none: until the server refuses it).
struct ExecCredential {
  std::string token;
  std::string client_cert_pem;
  std::string client_key_pem;
  std::optional<absl::Time> expiry;
};

// Runs a plugin and keeps its credential until it expires (5 s before its
// expirationTimestamp) or the server answers 401 with it (Invalidate). The
// command runs with no shell and nothing of the deployer's environment but
// PATH and HOME (so the command is found as kubectl would find it and its
// own configuration folder is there), then the kubeconfig's env, then
// KUBERNETES_EXEC_INFO (an ExecCredential with spec.interactive false, and
// spec.cluster with the server and CA when provideClusterInfo is set). Its
// stdout is bounded (256 KiB) and it is killed after 60 s. The credential is
// never logged, and errors never quote the plugin's output (it may hold
// one): they name the kubeconfig user, the command and the exit status.
// Thread-safe: concurrent callers wait for one run.
class ExecCredentialSource {
 public:
  // `clock` (not owned; null: the system's) decides expiry.
  ExecCredentialSource(ExecPlugin plugin, std::string server, std::string ca_pem, const Clock* clock = nullptr);

  // The current credential, running the plugin when there is none or it
  // expired. UNAVAILABLE when the plugin failed (non-zero exit, killed,
  // timed out: perhaps for a moment); FAILED_PRECONDITION when the command
  // is missing or not executable, or its output is not a valid
  // ExecCredential of the configured apiVersion.
  absl::StatusOr<std::shared_ptr<const ExecCredential>> Get() ABSL_LOCKS_EXCLUDED(mu_);
  // The server refused `used` (401): the next Get runs the plugin, unless a
  // newer credential has replaced it already.
  void Invalidate(const std::shared_ptr<const ExecCredential>& used) ABSL_LOCKS_EXCLUDED(mu_);
  // Plugin runs so far.
  int64_t runs() const ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr absl::Duration kTimeout = absl::Seconds(60);
  static constexpr absl::Duration kExpiryMargin = absl::Seconds(5);
  static constexpr size_t kMaxOutputBytes = 256 << 10;

 private:
  absl::StatusOr<ExecCredential> Run() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string Who() const;

  const ExecPlugin plugin_;
  const std::string server_, ca_pem_;
  const Clock* clock_;
  mutable ferry::Mutex mu_;
  std::shared_ptr<const ExecCredential> current_ ABSL_GUARDED_BY(mu_);
  int64_t runs_ ABSL_GUARDED_BY(mu_) = 0;
};

// Reads a plugin's stdout: an ExecCredential of `api_version` with
// status.token or status.clientCertificateData and clientKeyData, and
// optionally status.expirationTimestamp (RFC 3339). Errors name `who` and
// the field, never the text.
absl::StatusOr<ExecCredential> ParseExecCredential(const std::string& out, const std::string& api_version,
                                                   const std::string& who);

}  // namespace ferry::deployer::kubernetes
