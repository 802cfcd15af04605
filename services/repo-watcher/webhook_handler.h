#pragma once

#include <functional>
#include <map>
#include <string>

#include "common/clock/clock.h"
#include "services/repo-watcher/rejection_audit_limiter.h"
#include "services/repo-watcher/repo_watcher_metrics.h"
#include "services/repo-watcher/repository_store.h"
#include "services/repo-watcher/webhook_payload.h"
#include "common/secrets/secret_sources.h"

namespace ferry::repo_watcher {

// A webhook as received over HTTP, framework-free.
struct WebhookRequest {
  std::string provider;       // "github", "gitlab", "gitea" or "generic"
  std::string repository_id;  // from the URL path
  std::map<std::string, std::string> headers;  // keys in lower case
  std::string body;
  std::string remote_address;
};

struct WebhookResponse {
  int status = 200;
  std::string body;
};

// What the handler does with a verified webhook besides a full poll.
struct WebhookSinks {
  // A push naming refs: check only these (tracked) refs now. Null: the
  // handler's TriggerFn (every tracked ref).
  std::function<void(const std::string& repository_id, const std::vector<std::string>& refs)> poll_refs;
  // A status or check-run event: record it (ReviewLog::ReportCheck; source
  // is the provider). Null: such events are answered 202, ignored.
  std::function<absl::StatusOr<v1::CommitCheck>(const v1::ReportCheckRequest& report, const v1::Actor& actor,
                                                const std::string& source)>
      report_check;
  // A pull/merge request opened, updated or closed (PullRequestTracker).
  // Null: answered 202, ignored.
  std::function<absl::Status(const v1::Repository& repo, const PullRequestChange& change, const v1::Actor& actor)>
      pull_request;
};

// Authenticates webhooks, then reads their body (webhook_payload.h) and acts
// on it. Per provider, the signature:
//   github:  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   gitea:   X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>
//   gitlab:  X-Gitlab-Token: <secret>
//   generic: X-Signature: sha256=<hex HMAC-SHA256(secret, body)>
// Only after the signature is verified is the body parsed. Answers: 202 on
// a push (a poll of the tracked refs it names, or of every tracked ref when
// it names none; 202 "ignored" when it names no tracked ref), 200 on a
// recorded check or pull-request change, 200 "pong" on a GitHub ping, 202
// "ignored" on other events and actions; 400 naming the field for a body
// that is not the event's JSON (audited), 401 on a missing or bad
// signature, 404 for an unknown repository or provider or a repository
// without a webhook secret, 413 for an oversize body, 502 when the
// pull request's head cannot be fetched. Every request is counted in
// ferry_webhook_requests_total{provider,result}.
// Rejections are audited (WEBHOOK_REJECTED) and logged with a rate limit
// (RejectionAuditLimiter): the first of a (repository, result) at once,
// then at most one event per `audit_interval` summarising the count since
// the last ("47 webhooks rejected with 401: ... since ..."), so that a
// flood of bad webhooks cannot fill the audit log. FlushRejections audits
// the tail of a flood that stopped; call it about once per interval.
// Secrets never appear in responses, logs or audit. Thread-safe.
class WebhookHandler {
 public:
  using TriggerFn = std::function<void(const std::string& repository_id)>;

  // `secrets` (where webhook_secret references may point) and `clock` (the
  // system clock when null) must outlive the handler.
  WebhookHandler(RepositoryStore* store, RepoWatcherMetrics* metrics, const secrets::SecretSources* secrets, TriggerFn trigger,
                 const Clock* clock = nullptr, absl::Duration audit_interval = absl::Minutes(1),
                 WebhookSinks sinks = {});

  WebhookResponse Handle(const WebhookRequest& request);
  // Records a body refused for its size before it was read.
  WebhookResponse RejectTooLarge(const WebhookRequest& request, size_t length, size_t limit);
  // Audits the rejections counted but not yet audited whose interval has
  // passed (`all`: every one, at shutdown).
  void FlushRejections(bool all = false);

 private:
  // `repository_known`: the repository id names a repository that exists
  // (only those get an audit key of their own).
  WebhookResponse Reject(const WebhookRequest& request, bool repository_known, int status, const std::string& result,
                         const std::string& reason);
  // Acts on a verified, parsed webhook.
  WebhookResponse Dispatch(const WebhookRequest& request, const v1::Repository& repo, const WebhookEvent& event);
  void Audit(const RejectionSummary& summary);

  RepositoryStore* store_;
  RepoWatcherMetrics* metrics_;
  const secrets::SecretSources* secrets_;
  TriggerFn trigger_;
  WebhookSinks sinks_;
  SystemClock system_clock_;
  RejectionAuditLimiter audit_limiter_;
};

// Lower-case hex HMAC-SHA256 of `body` under `key`.
std::string HmacSha256Hex(const std::string& key, const std::string& body);

// Constant-time equality.
bool SecureEquals(const std::string& a, const std::string& b);

}  // namespace ferry::repo_watcher
