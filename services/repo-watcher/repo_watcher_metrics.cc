#include "services/repo-watcher/repo_watcher_metrics.h"

namespace ferry::repo_watcher {

RepoWatcherMetrics::RepoWatcherMetrics(prometheus::Registry& registry)
    : git_requests_(prometheus::BuildCounter()
                        .Name("ferry_git_requests_total")
                        .Help("Git requests (ls-remote, fetch) by result")
                        .Register(registry)),
      git_duration_(prometheus::BuildHistogram()
                        .Name("ferry_git_request_duration_seconds")
                        .Help("Duration of Git requests")
                        .Register(registry)),
      webhooks_(prometheus::BuildCounter()
                    .Name("ferry_webhook_requests_total")
                    .Help("Push webhook requests by provider and result")
                    .Register(registry)),
      revisions_(prometheus::BuildCounter()
                     .Name("ferry_revisions_total")
                     .Help("Revisions recorded, by signature result")
                     .Register(registry)) {}

void RepoWatcherMetrics::GitRequest(const std::string& type, bool ok, absl::Duration took) {
  git_requests_.Add({{"request_type", type}, {"result", ok ? "success" : "failure"}}).Increment();
  static const prometheus::Histogram::BucketBoundaries kBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                                   0.25,  0.5,   1,    2.5,   5,    10, 30};
  git_duration_.Add({{"request_type", type}}, kBuckets).Observe(absl::ToDoubleSeconds(took));
}

void RepoWatcherMetrics::Webhook(const std::string& provider, const std::string& result) {
  webhooks_.Add({{"provider", provider}, {"result", result}}).Increment();
}

void RepoWatcherMetrics::Revision(const std::string& signature_result) {
  revisions_.Add({{"signature_result", signature_result}}).Increment();
}

}  // namespace ferry::repo_watcher
