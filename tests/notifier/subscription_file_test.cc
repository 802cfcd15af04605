#include "services/notifier/subscription_file.h"

#include <gtest/gtest.h>

namespace ferry::notifier {
namespace {

TEST(SubscriptionFile, ParsesEverySinkKind) {
  auto subs = ParseSubscriptionFile(R"(
subscriptions:
  - name: prod-failures
    application: web
    environment: prod
    events: [deployment_failed, deployment_rolled_back]
    template: "{{application}} failed: {{message}}"
    sink:
      kind: slack
      url_secret: {env: FERRY_SECRET_SLACK}
  - name: audit-hook
    events: [access_denied]
    sink: {kind: webhook, url: "https://hooks.example.com/ferry", hmac_secret: {file: hook.key}}
  - name: teams
    events: [drift_detected]
    sink: {kind: teams, url_secret: {vault: {path: team/teams, field: url}}}
  - name: mail
    events: [plan_waiting_for_approval]
    sink:
      kind: email
      smtp_url: smtps://smtp.example.com:465
      smtp_username: ferry
      smtp_password: {file: smtp.pw}
      from: ferry@example.com
      to: [a@example.com, b@example.com]
)",
                                    "subs.yaml");
  ASSERT_TRUE(subs.ok()) << subs.status();
  ASSERT_EQ(subs->size(), 4u);
  EXPECT_EQ((*subs)[0].sink().url_secret().env(), "FERRY_SECRET_SLACK");
  EXPECT_EQ((*subs)[0].events_size(), 2);
  EXPECT_EQ((*subs)[0].source(), "config");
  EXPECT_EQ((*subs)[1].sink().hmac_secret().file(), "hook.key");
  EXPECT_EQ((*subs)[2].sink().url_secret().vault().field(), "url");
  EXPECT_EQ((*subs)[3].sink().to_size(), 2);
  EXPECT_EQ((*subs)[3].events(0), v1::NOTIFICATION_EVENT_PLAN_WAITING_FOR_APPROVAL);
}

TEST(SubscriptionFile, RefusesTyposNamingFileEntryAndKey) {
  auto subs = ParseSubscriptionFile(R"(
subscriptions:
  - name: a
    enviroment: prod
    events: [deployment_failed]
    sink: {kind: slack, url: "https://hooks.slack.com/x"}
)",
                                    "subs.yaml");
  ASSERT_FALSE(subs.ok());
  EXPECT_EQ(subs.status().message(), "subs.yaml: subscriptions[0]: unknown key \"enviroment\"");
}

TEST(SubscriptionFile, RefusesUnknownEventsAndDuplicateNames) {
  auto bad_event = ParseSubscriptionFile(
      "subscriptions:\n- {name: a, events: [deploy_failed], sink: {kind: slack, url: 'https://x'}}\n", "f.yaml");
  ASSERT_FALSE(bad_event.ok());
  EXPECT_NE(bad_event.status().message().find("f.yaml: subscriptions[0].events[0]: unknown event \"deploy_failed\""),
            std::string::npos)
      << bad_event.status();
  auto twice = ParseSubscriptionFile(
      "subscriptions:\n- {name: a, events: [drift_detected], sink: {kind: slack, url: 'https://x'}}\n"
      "- {name: a, events: [drift_healed], sink: {kind: slack, url: 'https://x'}}\n",
      "f.yaml");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("used twice"), std::string::npos);
  EXPECT_FALSE(ParseSubscriptionFile("subscriptions: [", "f.yaml").ok());
  auto empty = ParseSubscriptionFile("", "f.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

}  // namespace
}  // namespace ferry::notifier
