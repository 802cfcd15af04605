#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "common/clock/clock.h"
#include "services/deployer/kubernetes/exec_credential.h"
#include "services/deployer/kubernetes/kube_credentials.h"

struct curl_slist;

namespace ferry::deployer::kubernetes {

struct KubeResponse {
  long code = 0;     // HTTP status.
  std::string body;  // Response body (JSON from the API server).
};

// An HTTPS client of one API server, over libcurl (OpenSSL), with the
// cluster's CA and the client's certificate or token. TLS peer and host
// verification are always on. With an exec credential plugin, its
// credential (ExecCredentialSource) is used until it expires, and a 401
// answer runs the plugin again and repeats the request once. Thread-safe:
// each request takes an idle curl handle from a small pool (so connections
// are reused) or makes one.
class KubeClient {
 public:
  // INVALID_ARGUMENT for credentials curl refuses (e.g. a malformed server).
  // `clock` (not owned; null: the system's) decides when an exec plugin's
  // credential expired.
  static absl::StatusOr<std::unique_ptr<KubeClient>> Create(KubeCredentials credentials,
                                                            const Clock* clock = nullptr);
  ~KubeClient();

  // One request: `path` starts with "/" (with its query). A transport
  // failure (connect, TLS, timeout) is UNAVAILABLE naming the server; any
  // HTTP status is returned as it is. A failing exec plugin's error is
  // returned as ExecCredentialSource::Get gives it.
  absl::StatusOr<KubeResponse> Request(const std::string& method, const std::string& path, const std::string& body = "",
                                       const std::string& content_type = "application/json",
                                       absl::Duration timeout = absl::Seconds(30));

  // A streaming GET (a watch): `on_line` gets each newline-terminated line of
  // the body as it arrives and returns false to end the stream early. Ends
  // when the server closes the response, `on_line` says so, `stop` becomes
  // true (looked at at least once a second) or after `timeout`. `on_open`
  // (when set) is called once the server answered 200, before the first
  // line. Returns the HTTP status; a transport failure is UNAVAILABLE.
  absl::StatusOr<long> Stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                              const std::atomic<bool>& stop, absl::Duration timeout,
                              const std::function<void()>& on_open = nullptr);

  // GET requests made through Request so far (tests: what a watch saved).
  int64_t get_count() const { return get_count_.load(); }

  const KubeCredentials& credentials() const { return credentials_; }
  // The exec plugin's credential cache; null without a plugin.
  ExecCredentialSource* exec_credentials() { return exec_.get(); }

 private:
  explicit KubeClient(KubeCredentials credentials) : credentials_(std::move(credentials)) {}
  void* TakeHandle();
  void ReturnHandle(void* handle);
  // Sets URL, TLS, credentials and method on `curl`; returns the header list
  // (the caller frees it after the transfer). `*used` receives the exec
  // plugin's credential the request carries (for Invalidate on a 401).
  absl::StatusOr<struct curl_slist*> Setup(void* curl, const std::string& method, const std::string& path,
                                           absl::Duration timeout, std::shared_ptr<const ExecCredential>* used);
  absl::StatusOr<KubeResponse> RequestOnce(const std::string& method, const std::string& path,
                                           const std::string& body, const std::string& content_type,
                                           absl::Duration timeout, std::shared_ptr<const ExecCredential>* used);

  const KubeCredentials credentials_;
  std::unique_ptr<ExecCredentialSource> exec_;  // Set by Create when credentials_.exec is.
  ferry::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> get_count_{0};
};

// The message of a failed response: the API server's Status message when
// the body is one, else the status code and the start of the body.
std::string KubeErrorMessage(const KubeResponse& response);

// A failed response as a Status: 404 NOT_FOUND, 409 ABORTED, 401/403
// PERMISSION_DENIED, 400/422 INVALID_ARGUMENT, 429/5xx UNAVAILABLE, others
// INTERNAL; `what` prefixes the message.
absl::Status KubeStatus(const KubeResponse& response, const std::string& what);

}  // namespace ferry::deployer::kubernetes
