#include "services/notifier/notification_builder.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/json/json.h"
#include "common/status/status_macros.h"
#include "common/notifications/message_template.h"
#include "services/notifier/notification_event.h"

namespace ferry::notifier {

using notifications::MessageTemplate;
namespace {

constexpr char kDefaultTemplate[] = "[{{event}}] {{message}}";

std::string TimeText(const google::protobuf::Timestamp& t) {
  absl::Time at = absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(t));
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", at, absl::UTCTimeZone());
}

std::map<std::string, std::string> Values(const v1::Event& e, const std::string& event_name) {
  const v1::Subject& s = e.subject();
  return {{"event", event_name},
          {"message", e.message()},
          {"application", s.application_id()},
          {"environment", s.environment_id()},
          {"commit", s.commit_sha()},
          {"short_commit", s.commit_sha().substr(0, 12)},
          {"plan", s.plan_id()},
          {"deployment", s.deployment_id()},
          {"repository", s.repository_id()},
          {"ref", s.ref()},
          {"actor", e.actor().id()},
          {"service", e.service()},
          {"time", TimeText(e.time())},
          {"sequence", absl::StrCat(e.sequence())}};
}

absl::StatusOr<nlohmann::json> RefJson(const v1::SecretRef& ref) {
  if (ref.source_case() == v1::SecretRef::SOURCE_NOT_SET) return nlohmann::json();
  std::string text;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(ref, &text, o).ok()) {
    return absl::InternalError("cannot encode a secret reference");
  }
  return ParseJson(text);
}

absl::StatusOr<nlohmann::json> EventJson(const v1::Event& e) {
  std::string text;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  v1::Event copy = e;
  copy.clear_prev_hash();
  copy.clear_hash();
  if (!google::protobuf::util::MessageToJsonString(copy, &text, o).ok()) {
    return absl::InternalError("cannot encode the audit event");
  }
  return ParseJson(text);
}

// Host of a URL, for people ("https://hooks.slack.com"): the rest of a Slack
// or Teams URL is its secret.
std::string UrlHost(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "";
  size_t end = url.find_first_of("/?#", scheme + 3);
  std::string host = url.substr(0, end);
  if (size_t at = host.find('@', scheme + 3); at != std::string::npos) host = url.substr(0, scheme + 3) + host.substr(at + 1);
  return host;
}

// A header value without line breaks (no header injection).
std::string HeaderSafe(std::string s) {
  absl::StrReplaceAll({{"\r", " "}, {"\n", " "}}, &s);
  return s;
}

std::string Subject(const std::string& text) {
  std::string first(absl::StrSplit(text, '\n').begin()->data(), std::min(text.find('\n'), text.size()));
  first = HeaderSafe(first);
  if (first.size() > 200) {
    size_t cut = 200;
    while (cut > 0 && (static_cast<unsigned char>(first[cut]) & 0xC0) == 0x80) --cut;
    first = first.substr(0, cut) + "...";
  }
  return first;
}

// RFC 2047 encoded word when the subject is not plain ASCII.
std::string EncodedSubject(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0x80) {
      static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      std::string b;
      size_t i = 0;
      for (; i + 2 < s.size(); i += 3) {
        uint32_t n = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
        b += {kB64[n >> 18], kB64[(n >> 12) & 63], kB64[(n >> 6) & 63], kB64[n & 63]};
      }
      if (i + 1 == s.size()) {
        uint32_t n = uint8_t(s[i]) << 16;
        b += {kB64[n >> 18], kB64[(n >> 12) & 63], '=', '='};
      } else if (i + 2 == s.size()) {
        uint32_t n = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8);
        b += {kB64[n >> 18], kB64[(n >> 12) & 63], kB64[(n >> 6) & 63], '='};
      }
      return "=?UTF-8?B?" + b + "?=";
    }
  }
  return s;
}

std::string ThemeColor(v1::NotificationEvent kind) {
  switch (kind) {
    case v1::NOTIFICATION_EVENT_DEPLOYMENT_SUCCEEDED:
    case v1::NOTIFICATION_EVENT_DRIFT_HEALED:
      return "2EB886";
    case v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED:
    case v1::NOTIFICATION_EVENT_DEPLOYMENT_ROLLED_BACK:
    case v1::NOTIFICATION_EVENT_SIGNATURE_REJECTED:
    case v1::NOTIFICATION_EVENT_ACCESS_DENIED:
    case v1::NOTIFICATION_EVENT_WEBHOOK_REJECTED:
      return "D40E0D";
    default:
      return "DAA038";
  }
}

}  // namespace

absl::StatusOr<NewDelivery> BuildNotification(const v1::Subscription& s, const v1::Event& event,
                                              v1::NotificationEvent kind, const std::string& id) {
  ASSIGN_OR_RETURN(MessageTemplate tmpl,
                   MessageTemplate::Parse(s.template_().empty() ? kDefaultTemplate : s.template_(),
                                          "subscription " + s.name() + " template"));
  const std::string name = EventName(kind);
  const std::string text = tmpl.Render(Values(event, name));
  const std::string delivery_id = id.empty() ? absl::StrCat(event.sequence(), "/", s.name()) : id;
  NewDelivery d;
  d.subscription = s.name();
  d.event = kind;
  nlohmann::json req;
  // Declared by an application (ferry.yaml): its secret references resolve
  // only from the sources for those (DeliverySender).
  if (s.source() == "declared") req["secrets"] = "declared";
  const v1::Sink& k = s.sink();
  if (k.kind() == v1::SINK_KIND_EMAIL) {
    req["kind"] = "email";
    req["smtp_url"] = k.smtp_url();
    req["smtp_username"] = k.smtp_username();
    ASSIGN_OR_RETURN(req["smtp_password"], RefJson(k.smtp_password()));
    req["from"] = k.from();
    req["to"] = nlohmann::json::array();
    std::string to_header;
    for (const std::string& to : k.to()) {
      req["to"].push_back(to);
      absl::StrAppend(&to_header, to_header.empty() ? "" : ", ", to);
    }
    // RFC 5322: CRLF line ends; a body line starting with "." is escaped by
    // libcurl's SMTP upload.
    std::string body = absl::StrReplaceAll(text, {{"\r\n", "\n"}});
    body = absl::StrReplaceAll(body, {{"\n", "\r\n"}});
    req["message"] = absl::StrCat(
        "From: ", k.from(), "\r\n", "To: ", to_header, "\r\n", "Subject: ", EncodedSubject(Subject(text)), "\r\n",
        "Date: ",
        absl::FormatTime("%a, %d %b %Y %H:%M:%S +0000",
                         absl::FromUnixMicros(google::protobuf::util::TimeUtil::TimestampToMicroseconds(event.time())),
                         absl::UTCTimeZone()),
        "\r\n", "Message-ID: <ferry.",
        id.empty() ? absl::StrCat(event.sequence(), ".", s.name()) : HeaderSafe(absl::StrReplaceAll(id, {{"/", "."}})),
        "@ferry.invalid>\r\n",
        "MIME-Version: 1.0\r\n", "Content-Type: text/plain; charset=utf-8\r\n", "Content-Transfer-Encoding: 8bit\r\n",
        "X-Ferry-Event: ", name, "\r\n", "X-Ferry-Delivery: ", HeaderSafe(delivery_id), "\r\n", "\r\n", body, "\r\n");
    d.target = absl::StrCat("email ", k.smtp_url(), " to ", to_header);
    d.request = DumpJsonLossy(req);
    return d;
  }
  nlohmann::json body;
  switch (k.kind()) {
    case v1::SINK_KIND_WEBHOOK: {
      req["kind"] = "webhook";
      body["id"] = delivery_id;
      body["event"] = name;
      body["subscription"] = s.name();
      body["text"] = text;
      ASSIGN_OR_RETURN(body["audit_event"], EventJson(event));
      ASSIGN_OR_RETURN(req["hmac_secret"], RefJson(k.hmac_secret()));
      break;
    }
    case v1::SINK_KIND_SLACK:
      req["kind"] = "slack";
      body["text"] = text;
      break;
    case v1::SINK_KIND_TEAMS:
      req["kind"] = "teams";
      body["@type"] = "MessageCard";
      body["@context"] = "https://schema.org/extensions";
      body["summary"] = Subject(text);
      body["themeColor"] = ThemeColor(kind);
      body["title"] = absl::StrCat("Ferry: ", name);
      body["text"] = text;
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("subscription ", s.name(), ": sink.kind is not set"));
  }
  req["url"] = k.url();
  ASSIGN_OR_RETURN(req["url_secret"], RefJson(k.url_secret()));
  req["headers"] = {{"X-Ferry-Event", name}, {"X-Ferry-Delivery", delivery_id}};
  req["body"] = DumpJsonLossy(body);
  d.target = absl::StrCat(req["kind"].get<std::string>(), " ",
                          k.url().empty() ? std::string("(url from a secret)") : UrlHost(k.url()));
  d.request = DumpJsonLossy(req);
  return d;
}

absl::StatusOr<std::optional<NewDelivery>> BuildCommitStatus(const v1::GitHost& host, const v1::Event& event) {
  if (host.kind() == v1::GIT_HOST_KIND_UNSPECIFIED) return std::nullopt;
  std::string state;
  std::string description;
  const std::string& env = event.subject().environment_id();
  switch (event.action()) {
    case v1::AUDIT_ACTION_PLAN_CREATED:
      state = "pending";
      description = absl::StrCat("planned for ", env, " (plan ", event.subject().plan_id(), ")");
      break;
    case v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED:
      state = "success";
      description = absl::StrCat("deployed to ", env);
      break;
    case v1::AUDIT_ACTION_DEPLOYMENT_FAILED:
      state = "failure";
      description = absl::StrCat("deployment to ", env, " failed");
      break;
    case v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK:
      state = "failure";
      description = absl::StrCat("deployment to ", env, " failed and was rolled back");
      break;
    default:
      return std::nullopt;
  }
  const std::string& sha = event.subject().commit_sha();
  if (sha.size() != 40 || !std::all_of(sha.begin(), sha.end(), [](char c) { return absl::ascii_isxdigit(c); })) {
    return absl::InvalidArgumentError(absl::StrCat("event ", event.sequence(), ": no full commit sha for a commit status"));
  }
  if (env.empty()) return absl::InvalidArgumentError(absl::StrCat("event ", event.sequence(), ": no environment"));
  if (!absl::StartsWith(host.api_url(), "https://") && !absl::StartsWith(host.api_url(), "http://")) {
    return absl::InvalidArgumentError("git_host.api_url: not an http(s) URL");
  }
  if (host.project().empty()) return absl::InvalidArgumentError("git_host.project: empty");
  const std::string context = "ferry/" + env;
  if (description.size() > 140) description = description.substr(0, 137) + "...";
  std::string base(absl::StripSuffix(host.api_url(), "/"));
  nlohmann::json req;
  nlohmann::json body;
  std::string kind;
  switch (host.kind()) {
    case v1::GIT_HOST_KIND_GITHUB:
    case v1::GIT_HOST_KIND_GITEA: {
      kind = host.kind() == v1::GIT_HOST_KIND_GITHUB ? "github" : "gitea";
      std::vector<std::string> parts = absl::StrSplit(host.project(), '/');
      if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
        return absl::InvalidArgumentError("git_host.project: must be owner/name");
      }
      req["url"] = absl::StrCat(base, "/repos/", parts[0], "/", parts[1], "/statuses/", sha);
      body["state"] = state;
      body["context"] = context;
      body["description"] = description;
      break;
    }
    case v1::GIT_HOST_KIND_GITLAB: {
      kind = "gitlab";
      // The id or the URL-encoded path ("group%2Fproject").
      req["url"] = absl::StrCat(base, "/projects/", absl::StrReplaceAll(host.project(), {{"/", "%2F"}}),
                                "/statuses/", sha);
      body["state"] = state == "failure" ? "failed" : state;
      body["name"] = context;
      body["description"] = description;
      break;
    }
    default:
      return absl::InvalidArgumentError("git_host.kind: unknown");
  }
  for (char c : host.project()) {
    if (!(absl::ascii_isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.')) {
      return absl::InvalidArgumentError("git_host.project: only letters, digits, '/', '-', '_' and '.'");
    }
  }
  req["kind"] = "commit_status";
  req["host_kind"] = kind;
  ASSIGN_OR_RETURN(req["token"], RefJson(host.token()));
  req["body"] = DumpJsonLossy(body);
  NewDelivery d;
  d.subscription = "commit-status/" + event.subject().repository_id();
  d.target = absl::StrCat(kind, " commit status ", sha.substr(0, 12), " ", context, " ", state);
  d.request = DumpJsonLossy(req);
  return d;
}

}  // namespace ferry::notifier
