#include "common/notifications/subscription_rules.h"

#include <gtest/gtest.h>

namespace ferry::notifications {
namespace {

v1::Subscription Declared() {
  v1::Subscription s;
  s.set_name("prod-failures");
  s.set_application_id("web");
  s.set_environment_id("prod");
  s.add_events(v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  s.mutable_sink()->set_kind(v1::SINK_KIND_SLACK);
  s.mutable_sink()->mutable_url_secret()->set_file("slack/web.url");
  return s;
}

std::string ErrorOf(const v1::Subscription& s) {
  return std::string(ValidateDeclaredSubscription(s, "web", "notifications[0]").message());
}

TEST(DeclaredSubscriptionRules, AcceptsAnApplicationsOwnSubscriptionWithSecretsByReference) {
  EXPECT_TRUE(ValidateDeclaredSubscription(Declared(), "web", "notifications[0]").ok());
  v1::Subscription hook = Declared();
  hook.mutable_sink()->set_kind(v1::SINK_KIND_WEBHOOK);
  hook.mutable_sink()->clear_url_secret();
  hook.mutable_sink()->set_url("https://hooks.example.com/ferry/web");
  hook.mutable_sink()->mutable_hmac_secret()->set_env("FERRY_SECRET_HOOK");
  EXPECT_TRUE(ValidateDeclaredSubscription(hook, "web", "notifications[0]").ok());
}

TEST(DeclaredSubscriptionRules, HearsOnlyAboutItsOwnApplication) {
  v1::Subscription s = Declared();
  s.set_application_id("");
  EXPECT_NE(ErrorOf(s).find("notifications[0].application_id"), std::string::npos) << ErrorOf(s);
  s.set_application_id("billing");
  EXPECT_NE(ErrorOf(s).find("notifications[0].application_id"), std::string::npos);
}

TEST(DeclaredSubscriptionRules, RefusesSuiteWideEventsNamingTheEntry) {
  for (v1::NotificationEvent e : {v1::NOTIFICATION_EVENT_ACCESS_DENIED, v1::NOTIFICATION_EVENT_SIGNATURE_REJECTED,
                                  v1::NOTIFICATION_EVENT_WEBHOOK_REJECTED}) {
    v1::Subscription s = Declared();
    s.add_events(e);
    EXPECT_NE(ErrorOf(s).find("notifications[0].events[1]: suite-wide"), std::string::npos) << ErrorOf(s);
  }
}

TEST(DeclaredSubscriptionRules, RefusesSecretsInline) {
  v1::Subscription s = Declared();
  s.mutable_sink()->clear_url_secret();
  s.mutable_sink()->set_url("https://hooks.slack.com/services/T0/B0/secret");
  EXPECT_NE(ErrorOf(s).find("notifications[0].sink.url: a Slack or Teams URL is a secret"), std::string::npos);
  // The message names the field, never the value.
  EXPECT_EQ(ErrorOf(s).find("T0/B0"), std::string::npos);
  s.mutable_sink()->set_kind(v1::SINK_KIND_WEBHOOK);
  s.mutable_sink()->set_url("https://hooks.example.com/x?token=abc");
  EXPECT_NE(ErrorOf(s).find("notifications[0].sink.url: no user info, query"), std::string::npos);
  s.mutable_sink()->set_url("https://user:pw@hooks.example.com/x");
  EXPECT_NE(ErrorOf(s).find("notifications[0].sink.url: no user info"), std::string::npos);
  EXPECT_EQ(ErrorOf(s).find("pw@"), std::string::npos);
  // The checks of every subscription still apply.
  s = Declared();
  s.set_template_("{{token}}");
  EXPECT_NE(ErrorOf(s).find("notifications[0].template"), std::string::npos);
}

}  // namespace
}  // namespace ferry::notifications
