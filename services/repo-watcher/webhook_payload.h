#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::repo_watcher {

// A pull (merge) request change a webhook announced.
struct PullRequestChange {
  enum class Kind {
    kOpened,   // opened or reopened: fetch the head, record it open
    kUpdated,  // new commits (GitHub synchronize, Gitea synchronized, GitLab update)
    kClosed,   // closed or merged (`merged` says which)
  };
  Kind kind = Kind::kOpened;
  int64_t number = 0;     // GitHub/Gitea number, GitLab iid
  std::string title;      // bounded, UTF-8
  std::string url;        // web URL (http(s) or empty)
  std::string author;     // host login
  std::string head_ref;   // on the base repository: refs/pull/N/head, refs/merge-requests/N/head
  std::string head_sha;   // as the host announced it (40 hex; may be empty on close)
  std::string base_ref;   // refs/heads/<target branch>
  bool merged = false;
};

// What a verified webhook body says, provider-independently.
struct WebhookEvent {
  enum class Type { kPing, kPush, kPullRequest, kCheck, kIgnored };
  Type type = Type::kIgnored;
  std::string name;                // the provider's event name, e.g. "push", "Merge Request Hook"
  std::vector<std::string> refs;   // kPush: the refs it names; empty: not named (generic), check all
  PullRequestChange pull_request;  // kPullRequest
  v1::ReportCheckRequest check;    // kCheck (repository_id left empty)
  std::string ignored;             // kIgnored: why, for the response
};

// Parses a webhook body whose signature was already verified:
//   github: X-GitHub-Event ping, push, pull_request, status, check_run
//   gitlab: X-Gitlab-Event Push Hook, Tag Push Hook, Merge Request Hook,
//           Pipeline Hook, Job Hook
//   gitea:  X-Gitea-Event-Type (else X-Gitea-Event) push, pull_request,
//           pull_request_sync, status
//   generic: an optional JSON object with "ref" (string) or "refs" (list)
// Other events and actions are kIgnored with the reason. A request without
// an event header is a push (hand-made and older callers). Header keys are
// lower case. INVALID_ARGUMENT naming the JSON field (e.g.
// "pull_request.head.sha: must be a 40-character lowercase hex commit id")
// for a body that is not a JSON object, nested deeper than 64 levels, or
// misses or mistypes a field the event needs.
absl::StatusOr<WebhookEvent> ParseWebhookPayload(const std::string& provider,
                                                 const std::map<std::string, std::string>& headers,
                                                 const std::string& body);

}  // namespace ferry::repo_watcher
