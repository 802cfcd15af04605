#include "services/notifier/notification_builder.h"

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "services/notifier/delivery_sender.h"
#include "services/notifier/notification_event.h"
#include "common/notifications/subscription_rules.h"

namespace ferry::notifier {
namespace {

using notifications::Matches;
using notifications::ValidateSubscription;

const std::string kSha = "0123456789abcdef0123456789abcdef01234567";

v1::Event DeployFailed() {
  v1::Event e;
  e.set_sequence(42);
  e.set_action(v1::AUDIT_ACTION_DEPLOYMENT_FAILED);
  e.set_service("deployer");
  e.set_message("deployment d1 failed: health check timed out");
  e.mutable_actor()->set_id("ferry");
  e.mutable_subject()->set_application_id("web");
  e.mutable_subject()->set_environment_id("prod");
  e.mutable_subject()->set_repository_id("shop");
  e.mutable_subject()->set_deployment_id("d1");
  e.mutable_subject()->set_commit_sha(kSha);
  *e.mutable_time() = google::protobuf::util::TimeUtil::SecondsToTimestamp(1764950400);  // 2025-12-05T16:00:00Z
  e.set_hash("ab");
  return e;
}

v1::Subscription Sub(v1::SinkKind kind) {
  v1::Subscription s;
  s.set_name("prod-failures");
  s.set_environment_id("prod");
  s.add_events(v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  s.mutable_sink()->set_kind(kind);
  if (kind == v1::SINK_KIND_EMAIL) {
    s.mutable_sink()->set_smtp_url("smtp://127.0.0.1:2525");
    s.mutable_sink()->set_from("ferry@example.com");
    s.mutable_sink()->add_to("oncall@example.com");
  } else {
    s.mutable_sink()->set_url("https://hooks.example.com/services/T000/B000/SECRETPATH");
  }
  return s;
}

nlohmann::json Parse(const std::string& s) { return nlohmann::json::parse(s); }

TEST(NotificationEvent, MapsAuditActions) {
  v1::Event e = DeployFailed();
  EXPECT_EQ(NotificationEventOf(e), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  e.set_action(v1::AUDIT_ACTION_PLAN_CREATED);
  EXPECT_EQ(NotificationEventOf(e), v1::NOTIFICATION_EVENT_UNSPECIFIED);
  (*e.mutable_details()->mutable_fields())["state"].set_string_value("PLAN_STATE_PENDING");
  EXPECT_EQ(NotificationEventOf(e), v1::NOTIFICATION_EVENT_PLAN_WAITING_FOR_APPROVAL);
  (*e.mutable_details()->mutable_fields())["state"].set_string_value("PLAN_STATE_APPROVED");
  EXPECT_EQ(NotificationEventOf(e), v1::NOTIFICATION_EVENT_UNSPECIFIED);
  e.set_action(v1::AUDIT_ACTION_REVISION_DETECTED);
  EXPECT_EQ(NotificationEventOf(e), v1::NOTIFICATION_EVENT_UNSPECIFIED);
  EXPECT_EQ(EventName(v1::NOTIFICATION_EVENT_DRIFT_HEALED), "drift_healed");
}

TEST(SubscriptionRules, MatchesApplicationEnvironmentAndKind) {
  v1::Subscription s = Sub(v1::SINK_KIND_WEBHOOK);
  v1::Event e = DeployFailed();
  EXPECT_TRUE(Matches(s, e, v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED));
  EXPECT_FALSE(Matches(s, e, v1::NOTIFICATION_EVENT_DEPLOYMENT_SUCCEEDED));
  e.mutable_subject()->set_environment_id("staging");
  EXPECT_FALSE(Matches(s, e, v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED));
  s.clear_environment_id();
  s.set_application_id("api");
  EXPECT_FALSE(Matches(s, e, v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED));
}

TEST(SubscriptionRules, RefusesBadSubscriptionsNamingTheField) {
  v1::Subscription s = Sub(v1::SINK_KIND_WEBHOOK);
  EXPECT_TRUE(ValidateSubscription(s, "subscription").ok());
  v1::Subscription bad = s;
  bad.clear_events();
  EXPECT_NE(ValidateSubscription(bad, "subscription").message().find("subscription.events"), std::string::npos);
  bad = s;
  bad.mutable_sink()->set_url("ftp://x");
  EXPECT_NE(ValidateSubscription(bad, "subscription").message().find("subscription.sink.url"), std::string::npos);
  bad = Sub(v1::SINK_KIND_EMAIL);
  bad.mutable_sink()->set_to(0, "a@b.com\r\nBcc: evil@x.com");
  EXPECT_NE(ValidateSubscription(bad, "subscription").message().find("subscription.sink.to[0]"), std::string::npos);
  bad = Sub(v1::SINK_KIND_EMAIL);
  bad.mutable_sink()->set_smtp_url("smtp://user:pw@host");
  EXPECT_FALSE(ValidateSubscription(bad, "subscription").ok());
  bad = s;
  bad.set_template_("{{nope}}");
  EXPECT_NE(ValidateSubscription(bad, "subscription").message().find("subscription.template"), std::string::npos);
  bad = s;
  bad.set_name("Not A Label");
  EXPECT_FALSE(ValidateSubscription(bad, "subscription").ok());
}

TEST(NotificationBuilder, WebhookCarriesTheEventAndTheRenderedText) {
  v1::Subscription s = Sub(v1::SINK_KIND_WEBHOOK);
  s.set_template_("{{application}} failed in {{environment}} at {{short_commit}}");
  s.mutable_sink()->mutable_hmac_secret()->set_file("hook.key");
  auto d = BuildNotification(s, DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->subscription, "prod-failures");
  EXPECT_EQ(d->target, "webhook https://hooks.example.com");  // never the URL's path
  nlohmann::json req = Parse(d->request);
  EXPECT_EQ(req["kind"], "webhook");
  EXPECT_EQ(req["hmac_secret"]["file"], "hook.key");
  EXPECT_EQ(req["headers"]["X-Ferry-Delivery"], "42/prod-failures");
  nlohmann::json body = Parse(req["body"].get<std::string>());
  EXPECT_EQ(body["event"], "deployment_failed");
  EXPECT_EQ(body["text"], "web failed in prod at 0123456789ab");
  EXPECT_EQ(body["audit_event"]["sequence"], "42");
  EXPECT_EQ(body["audit_event"]["subject"]["deployment_id"], "d1");
  EXPECT_FALSE(body["audit_event"].contains("hash"));
  // Deterministic: a retry sends the same bytes, so the same signature.
  auto again = BuildNotification(s, DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  EXPECT_EQ(again->request, d->request);
}

TEST(NotificationBuilder, SlackAndTeamsBodies) {
  auto slack = BuildNotification(Sub(v1::SINK_KIND_SLACK), DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(slack.ok());
  EXPECT_EQ(Parse(Parse(slack->request)["body"].get<std::string>()),
            nlohmann::json({{"text", "[deployment_failed] deployment d1 failed: health check timed out"}}));
  auto teams = BuildNotification(Sub(v1::SINK_KIND_TEAMS), DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(teams.ok());
  nlohmann::json card = Parse(Parse(teams->request)["body"].get<std::string>());
  EXPECT_EQ(card["@type"], "MessageCard");
  EXPECT_EQ(card["@context"], "https://schema.org/extensions");
  EXPECT_EQ(card["themeColor"], "D40E0D");
  EXPECT_EQ(card["text"], "[deployment_failed] deployment d1 failed: health check timed out");
}

TEST(NotificationBuilder, EmailHeadersCannotBeInjected) {
  v1::Event e = DeployFailed();
  e.set_message("line one\r\nBcc: evil@example.com\n\nbody");
  auto d = BuildNotification(Sub(v1::SINK_KIND_EMAIL), e, v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(d.ok());
  nlohmann::json req = Parse(d->request);
  const std::string msg = req["message"];
  const std::string headers = msg.substr(0, msg.find("\r\n\r\n"));
  EXPECT_EQ(headers.find("\r\nBcc:"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Subject: [deployment_failed] line one"), std::string::npos) << headers;
  EXPECT_NE(headers.find("Date: Fri, 05 Dec 2025 16:00:00 +0000"), std::string::npos) << headers;
  EXPECT_NE(headers.find("To: oncall@example.com"), std::string::npos);
  EXPECT_EQ(req["to"], nlohmann::json::array({"oncall@example.com"}));
}

TEST(NotificationBuilder, CommitStatusPerHostAsTheirApisDocument) {
  v1::GitHost host;
  host.set_api_url("https://api.github.com/");
  host.set_project("acme/shop");
  host.mutable_token()->set_env("FERRY_SECRET_GH");
  v1::Event e = DeployFailed();

  host.set_kind(v1::GIT_HOST_KIND_GITHUB);
  auto gh = BuildCommitStatus(host, e);
  ASSERT_TRUE(gh.ok() && gh->has_value()) << gh.status();
  nlohmann::json req = Parse((*gh)->request);
  EXPECT_EQ(req["url"], "https://api.github.com/repos/acme/shop/statuses/" + kSha);
  nlohmann::json body = Parse(req["body"].get<std::string>());
  EXPECT_EQ(body["state"], "failure");
  EXPECT_EQ(body["context"], "ferry/prod");

  host.set_kind(v1::GIT_HOST_KIND_GITLAB);
  host.set_api_url("https://gitlab.example.com/api/v4");
  host.set_project("group/sub/shop");
  auto gl = BuildCommitStatus(host, e);
  ASSERT_TRUE(gl.ok() && gl->has_value());
  req = Parse((*gl)->request);
  EXPECT_EQ(req["url"], "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Fshop/statuses/" + kSha);
  body = Parse(req["body"].get<std::string>());
  EXPECT_EQ(body["state"], "failed");
  EXPECT_EQ(body["name"], "ferry/prod");

  host.set_kind(v1::GIT_HOST_KIND_GITEA);
  host.set_api_url("https://gitea.example.com/api/v1");
  host.set_project("acme/shop");
  e.set_action(v1::AUDIT_ACTION_PLAN_CREATED);
  e.mutable_subject()->set_plan_id("p1");
  auto gt = BuildCommitStatus(host, e);
  ASSERT_TRUE(gt.ok() && gt->has_value());
  req = Parse((*gt)->request);
  EXPECT_EQ(req["url"], "https://gitea.example.com/api/v1/repos/acme/shop/statuses/" + kSha);
  EXPECT_EQ(Parse(req["body"].get<std::string>())["state"], "pending");

  e.set_action(v1::AUDIT_ACTION_DRIFT_DETECTED);
  auto none = BuildCommitStatus(host, e);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  host.set_project("acme/../x?y");
  e.set_action(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED);
  EXPECT_FALSE(BuildCommitStatus(host, e).ok());
}

TEST(DeliverySender, HmacMatchesKnownVector) {
  // RFC 4231 test case 2.
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// Records what would be sent.
class RecordingHttp final : public HttpTransport {
 public:
  absl::StatusOr<HttpResponse> Post(const std::string& url,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::string& body) override {
    urls.push_back(url);
    return HttpResponse{200, "ok"};
  }
  std::vector<std::string> urls;
};

class NoMail final : public MailTransport {
 public:
  absl::Status Send(const MailMessage&) override { return absl::InternalError("no mail here"); }
};

TEST(DeliverySender, DeclaredSubscriptionsReadOnlyTheirOwnSecretSources) {
  v1::Subscription s = Sub(v1::SINK_KIND_SLACK);
  s.mutable_sink()->clear_url();
  s.mutable_sink()->mutable_url_secret()->set_file("slack.url");
  std::vector<std::string> read_by_main, read_by_declared;
  SecretReader main = [&](const v1::SecretRef& ref, const std::string&) -> absl::StatusOr<std::string> {
    read_by_main.push_back(ref.file());
    return std::string("https://hooks.example.com/main");
  };
  SecretReader declared = [&](const v1::SecretRef& ref, const std::string&) -> absl::StatusOr<std::string> {
    read_by_declared.push_back(ref.file());
    return std::string("https://hooks.example.com/declared");
  };
  RecordingHttp http;
  NoMail mail;
  DeliverySender sender(http, mail, main, declared);
  auto api = BuildNotification(s, DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(api.ok()) << api.status();
  ASSERT_TRUE(sender.Send(api->request).ok());
  s.set_name("web/prod-failures");
  s.set_source("declared");
  auto from_git = BuildNotification(s, DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  ASSERT_TRUE(from_git.ok()) << from_git.status();
  ASSERT_TRUE(sender.Send(from_git->request).ok());
  EXPECT_EQ(read_by_main, std::vector<std::string>{"slack.url"});
  EXPECT_EQ(read_by_declared, std::vector<std::string>{"slack.url"});
  EXPECT_EQ(http.urls, (std::vector<std::string>{"https://hooks.example.com/main", "https://hooks.example.com/declared"}));

  // Without sources for them, a declared subscription's references are
  // refused (not retried), naming the flags; the main sources are not asked.
  DeliverySender without(http, mail, main);
  absl::Status refused = without.Send(from_git->request);
  EXPECT_TRUE(absl::IsFailedPrecondition(refused)) << refused;
  EXPECT_NE(refused.message().find("--declared-secrets-dir"), std::string::npos) << refused;
  EXPECT_EQ(read_by_main.size(), 1u);
}

TEST(NotificationBuilder, ATestSendCarriesItsOwnId) {
  auto d = BuildNotification(Sub(v1::SINK_KIND_WEBHOOK), DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED,
                             "test/prod-failures/1764950400000000");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NE(d->request.find("test/prod-failures/1764950400000000"), std::string::npos);
  EXPECT_EQ(d->request.find("42/prod-failures"), std::string::npos);
  auto mail = BuildNotification(Sub(v1::SINK_KIND_EMAIL), DeployFailed(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED,
                                "test/prod-failures/7");
  ASSERT_TRUE(mail.ok()) << mail.status();
  EXPECT_NE(mail->request.find("Message-ID: <ferry.test.prod-failures.7@ferry.invalid>"), std::string::npos);
}

}  // namespace
}  // namespace ferry::notifier
