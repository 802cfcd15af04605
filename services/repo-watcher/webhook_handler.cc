#include "services/repo-watcher/webhook_handler.h"

#include <algorithm>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging/logger.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {

std::string Header(const WebhookRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

bool KnownProvider(const std::string& p) {
  return p == "github" || p == "gitlab" || p == "gitea" || p == "generic";
}

}  // namespace

std::string HmacSha256Hex(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[mac[i] >> 4]);
    out.push_back(kHex[mac[i] & 0xf]);
  }
  return out;
}

bool SecureEquals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

WebhookHandler::WebhookHandler(RepositoryStore* store, RepoWatcherMetrics* metrics, const secrets::SecretSources* secrets,
                               TriggerFn trigger, const Clock* clock, absl::Duration audit_interval,
                               WebhookSinks sinks)
    : store_(store),
      metrics_(metrics),
      secrets_(secrets),
      trigger_(std::move(trigger)),
      sinks_(std::move(sinks)),
      audit_limiter_(clock != nullptr ? clock : &system_clock_, audit_interval) {}

WebhookResponse WebhookHandler::Reject(const WebhookRequest& request, bool repository_known, int status,
                                       const std::string& result, const std::string& reason) {
  std::string provider = KnownProvider(request.provider) ? request.provider : "unknown";
  metrics_->Webhook(provider, result);
  std::optional<RejectionSummary> due = audit_limiter_.Record(Rejection{
      .repository_id = repository_known ? request.repository_id : "",
      .result = result,
      .provider = provider,
      .http_status = status,
      .reason = reason,
      .remote_address = request.remote_address,
      .requested_repository_id = IsValidId(request.repository_id) ? request.repository_id : "",
  });
  if (due) Audit(*due);
  return WebhookResponse{status, absl::StrCat(reason, "\n")};
}

void WebhookHandler::Audit(const RejectionSummary& summary) {
  const Rejection& r = summary.last;
  std::string message =
      summary.count == 1
          ? absl::StrCat("webhook rejected with ", r.http_status, ": ", r.reason)
          : absl::StrCat(summary.count, " webhooks rejected with ", r.http_status, ": ", r.reason, " since ",
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", summary.since, absl::UTCTimeZone()));
  v1::Event event = MakeEvent(v1::AUDIT_ACTION_WEBHOOK_REJECTED, r.repository_id, message);
  auto& f = *event.mutable_details()->mutable_fields();
  f["provider"].set_string_value(r.provider);
  f["http_status"].set_number_value(r.http_status);
  f["reason"].set_string_value(r.reason);
  f["result"].set_string_value(r.result);
  f["remote_address"].set_string_value(r.remote_address);
  if (r.repository_id.empty() && !r.requested_repository_id.empty()) {
    f["requested_repository_id"].set_string_value(r.requested_repository_id);
  }
  f["count"].set_number_value(static_cast<double>(summary.count));
  f["since"].set_string_value(absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", summary.since, absl::UTCTimeZone()));
  absl::Status audited = store_->RecordEvent(event);
  logging::Warn("webhook rejected", {{"provider", r.provider}, {"repository", r.repository_id},
                                     {"status", r.http_status}, {"reason", r.reason},
                                     {"remote_address", r.remote_address}, {"count", summary.count},
                                     {"audited", audited.ok()}});
}

void WebhookHandler::FlushRejections(bool all) {
  for (const RejectionSummary& summary : audit_limiter_.TakeDue(all)) Audit(summary);
}

WebhookResponse WebhookHandler::RejectTooLarge(const WebhookRequest& request, size_t length, size_t limit) {
  return Reject(request, false, 413, "too_large",
                absl::StrCat("body of ", length, " bytes exceeds the limit of ", limit, " (--webhook-max-body-bytes)"));
}

WebhookResponse WebhookHandler::Handle(const WebhookRequest& request) {
  if (!KnownProvider(request.provider)) {
    return Reject(request, false, 404, "unknown_provider",
                  absl::StrCat("unknown provider \"", request.provider, "\" (github, gitlab, gitea, generic)"));
  }
  if (!IsValidId(request.repository_id)) return Reject(request, false, 404, "unknown_repository", "unknown repository");
  absl::StatusOr<v1::Repository> repo = store_->Get(request.repository_id);
  if (!repo.ok()) {
    if (absl::IsNotFound(repo.status())) {
      return Reject(request, false, 404, "unknown_repository", "unknown repository");
    }
    metrics_->Webhook(request.provider, "error");
    return WebhookResponse{503, "repository store unavailable\n"};
  }
  if (!repo->has_webhook_secret()) {
    return Reject(request, true, 404, "unknown_repository", "repository has no webhook secret configured");
  }
  absl::StatusOr<std::string> secret = secrets_->Read(repo->webhook_secret(), "repository.webhook_secret");
  if (!secret.ok()) {
    metrics_->Webhook(request.provider, "error");
    logging::Error("cannot read webhook secret", {{"repository", repo->id()}, {"error", secret.status().ToString()}});
    return WebhookResponse{500, "webhook secret unavailable\n"};
  }
  bool authentic = false;
  if (request.provider == "gitlab") {
    std::string token = Header(request, "x-gitlab-token");
    authentic = !token.empty() && SecureEquals(token, *secret);
  } else {
    std::string header = request.provider == "github"  ? Header(request, "x-hub-signature-256")
                         : request.provider == "gitea" ? Header(request, "x-gitea-signature")
                                                       : Header(request, "x-signature");
    std::string given = absl::AsciiStrToLower(header);
    if (absl::StartsWith(given, "sha256=")) given = given.substr(7);
    else if (request.provider == "github") given.clear();  // GitHub always prefixes
    authentic = !given.empty() && SecureEquals(given, HmacSha256Hex(*secret, request.body));
  }
  if (!authentic) return Reject(request, true, 401, "bad_signature", "missing or invalid signature");
  if (request.provider == "github" && Header(request, "x-github-event") == "ping") {
    metrics_->Webhook(request.provider, "ping");
    return WebhookResponse{200, "pong\n"};
  }
  absl::StatusOr<WebhookEvent> event = ParseWebhookPayload(request.provider, request.headers, request.body);
  if (!event.ok()) return Reject(request, true, 400, "bad_payload", std::string(event.status().message()));
  return Dispatch(request, *repo, *event);
}

WebhookResponse WebhookHandler::Dispatch(const WebhookRequest& request, const v1::Repository& repo,
                                         const WebhookEvent& event) {
  auto ignored = [&](const std::string& why) {
    metrics_->Webhook(request.provider, "ignored");
    return WebhookResponse{202, absl::StrCat("ignored: ", why, "\n")};
  };
  v1::Actor actor;
  actor.set_kind(v1::ACTOR_KIND_SERVICE);
  actor.set_id(absl::StrCat("webhook:", request.provider, "/", repo.id()));
  switch (event.type) {
    case WebhookEvent::Type::kPing:
      metrics_->Webhook(request.provider, "ping");
      return WebhookResponse{200, "pong\n"};
    case WebhookEvent::Type::kIgnored:
      return ignored(event.ignored);
    case WebhookEvent::Type::kPush: {
      if (event.refs.empty() || !sinks_.poll_refs) {
        if (!event.refs.empty() &&
            std::none_of(event.refs.begin(), event.refs.end(),
                         [&](const std::string& ref) { return IsTrackedRef(repo, ref); })) {
          return ignored(absl::StrCat(event.refs.front(), " is not tracked by ", repo.id()));
        }
        trigger_(repo.id());
        metrics_->Webhook(request.provider, "accepted");
        return WebhookResponse{202, absl::StrCat("refresh of ", repo.id(), " triggered\n")};
      }
      std::vector<std::string> tracked;
      for (const std::string& ref : event.refs) {
        if (IsTrackedRef(repo, ref)) tracked.push_back(ref);
      }
      if (tracked.empty()) return ignored(absl::StrCat(event.refs.front(), " is not tracked by ", repo.id()));
      sinks_.poll_refs(repo.id(), tracked);
      metrics_->Webhook(request.provider, "accepted");
      return WebhookResponse{202, absl::StrCat("check of ", absl::StrJoin(tracked, ", "), " of ", repo.id(),
                                               " triggered\n")};
    }
    case WebhookEvent::Type::kCheck: {
      if (!sinks_.report_check) return ignored("check reports are not recorded by this handler");
      v1::ReportCheckRequest report = event.check;
      report.set_repository_id(repo.id());
      absl::StatusOr<v1::CommitCheck> stored = sinks_.report_check(report, actor, request.provider);
      if (absl::IsInvalidArgument(stored.status())) {
        return Reject(request, true, 400, "bad_payload", std::string(stored.status().message()));
      }
      if (!stored.ok()) {
        metrics_->Webhook(request.provider, "error");
        logging::Error("cannot record a check from a webhook",
                       {{"repository", repo.id()}, {"error", stored.status().ToString()}});
        return WebhookResponse{503, "check store unavailable\n"};
      }
      metrics_->Webhook(request.provider, "check");
      return WebhookResponse{200, absl::StrCat("check \"", stored->name(), "\" of ", stored->sha(), " recorded\n")};
    }
    case WebhookEvent::Type::kPullRequest: {
      if (!sinks_.pull_request) return ignored("pull requests are not tracked by this handler");
      absl::Status applied = sinks_.pull_request(repo, event.pull_request, actor);
      if (absl::IsInvalidArgument(applied)) {
        return Reject(request, true, 400, "bad_payload", std::string(applied.message()));
      }
      if (!applied.ok()) {
        metrics_->Webhook(request.provider, "error");
        logging::Warn("cannot apply a pull-request webhook", {{"repository", repo.id()},
                                                             {"number", event.pull_request.number},
                                                             {"error", applied.ToString()}});
        return WebhookResponse{502, absl::StrCat("pull request ", event.pull_request.number, ": ",
                                                 applied.message(), "\n")};
      }
      metrics_->Webhook(request.provider, "pull_request");
      return WebhookResponse{200, absl::StrCat("pull request ", event.pull_request.number, " recorded\n")};
    }
  }
  return ignored("unknown event");
}

}  // namespace ferry::repo_watcher
