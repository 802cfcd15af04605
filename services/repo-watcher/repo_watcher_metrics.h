#pragma once

#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/time/time.h"

namespace ferry::repo_watcher {

// The repo-watcher's Prometheus metrics, named after Argo CD's:
//   ferry_git_requests_total{request_type="ls-remote|fetch",result="success|failure"}
//   ferry_git_request_duration_seconds{request_type}
//   ferry_webhook_requests_total{provider,result}
//   ferry_revisions_total{signature_result}
// Thread-safe.
class RepoWatcherMetrics {
 public:
  explicit RepoWatcherMetrics(prometheus::Registry& registry);

  void GitRequest(const std::string& type, bool ok, absl::Duration took);
  void Webhook(const std::string& provider, const std::string& result);
  void Revision(const std::string& signature_result);

 private:
  prometheus::Family<prometheus::Counter>& git_requests_;
  prometheus::Family<prometheus::Histogram>& git_duration_;
  prometheus::Family<prometheus::Counter>& webhooks_;
  prometheus::Family<prometheus::Counter>& revisions_;
};

}  // namespace ferry::repo_watcher
