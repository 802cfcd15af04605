#pragma once

#include <functional>
#include <map>
#include <string>

#include "services/repo-watcher/repo_watcher_metrics.h"
#include "services/repo-watcher/repository_store.h"

namespace ferry::repo_watcher {

// A push webhook as received over HTTP, framework-free.
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

// Authenticates push webhooks and triggers an immediate poll of the
// repository. Per provider:
//   github:  X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>
//   gitea:   X-Gitea-Signature: <hex HMAC-SHA256(secret, body)>
//   gitlab:  X-Gitlab-Token: <secret>
//   generic: X-Signature: sha256=<hex HMAC-SHA256(secret, body)>
// 202 on a valid push (a GitHub ping gets 200 without a poll), 401 on a
// missing or bad signature, 404 for an unknown repository or provider or a
// repository without a webhook secret, 413 for an oversize body. Every
// request is counted in ferry_webhook_requests_total; every rejection is
// audited (WEBHOOK_REJECTED). Secrets never appear in responses, logs or
// audit. Thread-safe.
class WebhookHandler {
 public:
  using TriggerFn = std::function<void(const std::string& repository_id)>;

  WebhookHandler(RepositoryStore* store, RepoWatcherMetrics* metrics, TriggerFn trigger)
      : store_(store), metrics_(metrics), trigger_(std::move(trigger)) {}

  WebhookResponse Handle(const WebhookRequest& request);
  // Records a body refused for its size before it was read.
  WebhookResponse RejectTooLarge(const WebhookRequest& request, size_t length, size_t limit);

 private:
  WebhookResponse Reject(const WebhookRequest& request, int status, const std::string& result,
                         const std::string& reason);

  RepositoryStore* store_;
  RepoWatcherMetrics* metrics_;
  TriggerFn trigger_;
};

// Lower-case hex HMAC-SHA256 of `body` under `key`.
std::string HmacSha256Hex(const std::string& key, const std::string& body);

// Constant-time equality.
bool SecureEquals(const std::string& a, const std::string& b);

}  // namespace ferry::repo_watcher
