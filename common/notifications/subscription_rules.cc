#include "common/notifications/subscription_rules.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "re2/re2.h"
#include "common/status/status_macros.h"
#include "common/notifications/message_template.h"

namespace ferry::notifications {
namespace {

bool IsDnsLabel(const std::string& s) {
  static const RE2* re = new RE2("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return s.size() <= 63 && RE2::FullMatch(s, *re);
}

bool HasRef(const v1::SecretRef& r) { return r.source_case() != v1::SecretRef::SOURCE_NOT_SET; }

absl::Status CheckHttpUrl(const std::string& url, const std::string& field) {
  if (!absl::StartsWith(url, "https://") && !absl::StartsWith(url, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": must be an https:// (or, to a loopback host, http://) URL"));
  }
  if (url.size() > 2048) return absl::InvalidArgumentError(absl::StrCat(field, ": longer than 2048 bytes"));
  if (url.find_first_of("\r\n \t") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": holds whitespace"));
  }
  return absl::OkStatus();
}

absl::Status CheckAddress(const std::string& a, const std::string& field) {
  // One plain address: no display name, nothing a header could be split at.
  static const RE2* re = new RE2(R"([^\s<>(),;:"\\@]+@[A-Za-z0-9.-]+)");
  if (a.size() > 254 || !RE2::FullMatch(a, *re)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a plain e-mail address (name@host)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSubscription(const v1::Subscription& s, const std::string& field) {
  if (!IsDnsLabel(s.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".name: must be a lowercase DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63)"));
  }
  if (!s.application_id().empty() && !IsDnsLabel(s.application_id())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".application_id: not an application id"));
  }
  if (!s.environment_id().empty() && !IsDnsLabel(s.environment_id())) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".environment_id: not an environment id"));
  }
  if (s.events().empty()) return absl::InvalidArgumentError(absl::StrCat(field, ".events: name at least one event"));
  for (int i = 0; i < s.events_size(); ++i) {
    if (s.events(i) == v1::NOTIFICATION_EVENT_UNSPECIFIED || !v1::NotificationEvent_IsValid(s.events(i))) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".events[", i, "]: not a notification event"));
    }
  }
  if (absl::Status t = MessageTemplate::Parse(s.template_(), field + ".template").status(); !t.ok()) return t;
  const v1::Sink& k = s.sink();
  const std::string sink = field + ".sink";
  switch (k.kind()) {
    case v1::SINK_KIND_WEBHOOK:
    case v1::SINK_KIND_SLACK:
    case v1::SINK_KIND_TEAMS:
      if (k.url().empty() == !HasRef(k.url_secret())) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ": set exactly one of url and url_secret"));
      }
      if (!k.url().empty()) RETURN_IF_ERROR(CheckHttpUrl(k.url(), sink + ".url"));
      if (HasRef(k.hmac_secret()) && k.kind() != v1::SINK_KIND_WEBHOOK) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ".hmac_secret: only a webhook sink is signed"));
      }
      if (!k.smtp_url().empty() || !k.to().empty() || !k.from().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ": smtp_url, from and to are for an email sink"));
      }
      break;
    case v1::SINK_KIND_EMAIL:
      if (!absl::StartsWith(k.smtp_url(), "smtp://") && !absl::StartsWith(k.smtp_url(), "smtps://")) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ".smtp_url: must be smtp://host[:port] or smtps://host[:port]"));
      }
      if (k.smtp_url().find_first_of("\r\n \t@") != std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat(sink, ".smtp_url: no whitespace and no credentials (use smtp_username and smtp_password)"));
      }
      if (!k.url().empty() || HasRef(k.url_secret()) || HasRef(k.hmac_secret())) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ": url, url_secret and hmac_secret are not for email"));
      }
      if (k.smtp_username().find_first_of("\r\n") != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat(sink, ".smtp_username: holds a line break"));
      }
      RETURN_IF_ERROR(CheckAddress(k.from(), sink + ".from"));
      if (k.to().empty()) return absl::InvalidArgumentError(absl::StrCat(sink, ".to: name at least one recipient"));
      if (k.to_size() > 50) return absl::InvalidArgumentError(absl::StrCat(sink, ".to: at most 50 recipients"));
      for (int i = 0; i < k.to_size(); ++i) {
        RETURN_IF_ERROR(CheckAddress(k.to(i), absl::StrCat(sink, ".to[", i, "]")));
      }
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(sink, ".kind: one of webhook, slack, teams, email"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDeclaredSubscription(const v1::Subscription& s, const std::string& application_id,
                                          const std::string& field) {
  RETURN_IF_ERROR(ValidateSubscription(s, field));
  if (s.application_id() != application_id) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".application_id: a subscription declared by application ", application_id,
                     " hears only about it (got \"", s.application_id(), "\")"));
  }
  for (int i = 0; i < s.events_size(); ++i) {
    switch (s.events(i)) {
      case v1::NOTIFICATION_EVENT_SIGNATURE_REJECTED:
      case v1::NOTIFICATION_EVENT_WEBHOOK_REJECTED:
      case v1::NOTIFICATION_EVENT_ACCESS_DENIED:
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".events[", i,
            "]: suite-wide events (signature_rejected, webhook_rejected, access_denied) are not for an "
            "application's subscriptions; an admin subscribes to them (ferry.v1.Notifier/CreateSubscription)"));
      default:
        break;
    }
  }
  const v1::Sink& k = s.sink();
  if ((k.kind() == v1::SINK_KIND_SLACK || k.kind() == v1::SINK_KIND_TEAMS) && !k.url().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".sink.url: a Slack or Teams URL is a secret: give it as urlSecret ({file|env|vault}), never inline"));
  }
  if (!k.url().empty()) {
    const size_t authority = k.url().find("://") + 3;
    const size_t path = k.url().find_first_of("/?#", authority);
    if (k.url().substr(authority, path == std::string::npos ? std::string::npos : path - authority).find('@') !=
            std::string::npos ||
        k.url().find_first_of("?#") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".sink.url: no user info, query or fragment inline (they hold tokens): give such a URL as urlSecret"));
    }
  }
  return absl::OkStatus();
}

bool Matches(const v1::Subscription& s, const v1::Event& event, v1::NotificationEvent kind) {
  if (kind == v1::NOTIFICATION_EVENT_UNSPECIFIED) return false;
  if (!s.application_id().empty() && s.application_id() != event.subject().application_id()) return false;
  if (!s.environment_id().empty() && s.environment_id() != event.subject().environment_id()) return false;
  return std::find(s.events().begin(), s.events().end(), kind) != s.events().end();
}

}  // namespace ferry::notifications
