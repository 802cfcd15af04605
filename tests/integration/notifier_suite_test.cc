// The notifier in the suite as `make up` runs it (TLS, tokens, policy): a
// subscription made by API as admin hears about the real planner's plans
// waiting for approval, through Audit/Tail as the service notifier (and
// GetRepository for commit statuses, allowed, with no git_host: none sent).
#include <gtest/gtest.h>
#include <httplib.h>

#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/concurrency/mutex.h"
#include "tests/integration/secure_suite.h"

namespace ferry {
namespace {

using testing::Describe;
using testing::SecureSuite;

TEST(NotifierSuiteTest, PlansWaitingForApprovalReachASubscriptionMadeByApi) {
  Mutex mu;
  std::vector<nlohmann::json> got;
  httplib::Server receiver;
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    MutexLock lock(&mu);
    got.push_back(nlohmann::json::parse(req.body, nullptr, false));
    res.status = 204;
  });
  int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { receiver.listen_after_bind(); });
  struct Joiner {
    httplib::Server& server;
    std::thread& thread;
    ~Joiner() {
      server.stop();
      thread.join();
    }
  } joiner{receiver, serving};

  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  auto notifier = v1::Notifier::NewStub(suite.UserChannel("notifier"));
  v1::CreateSubscriptionRequest req;
  v1::Subscription* s = req.mutable_subscription();
  s->set_name("approvals");
  s->add_events(v1::NOTIFICATION_EVENT_PLAN_WAITING_FOR_APPROVAL);
  s->set_template_("{{application}} in {{environment}} waits for approval: plan {{plan}}");
  s->mutable_sink()->set_kind(v1::SINK_KIND_WEBHOOK);
  s->mutable_sink()->set_url(absl::StrCat("http://127.0.0.1:", port, "/hook"));
  v1::Subscription created;
  // A viewer may not make one; the admin may.
  grpc::Status st = notifier->CreateSubscription(SecureSuite::Context(suite.CreateToken("viewer")).get(), req, &created);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(st);
  st = notifier->CreateSubscription(SecureSuite::Context(suite.admin_token()).get(), req, &created);
  ASSERT_TRUE(st.ok()) << Describe(st);

  ASSERT_TRUE(suite.Seed()) << suite.Logs();  // PENDING plans of web in staging and prod
  // Every plan the planner created waiting for approval, from the audit trail
  // (which the planner's outbox reaches after Seed returns: read until the
  // seeded plans are in it).
  std::set<std::string> waiting;
  SecureSuite::Eventually([&] {
    waiting.clear();
    for (const v1::Event& e : suite.Events(v1::AUDIT_ACTION_PLAN_CREATED)) {
      auto it = e.details().fields().find("state");
      if (it != e.details().fields().end() && it->second.string_value() == "PLAN_STATE_PENDING") {
        waiting.insert(absl::StrCat("web in ", e.subject().environment_id(), " waits for approval: plan ",
                                    e.subject().plan_id()));
      }
    }
    return waiting.count("web in prod waits for approval: plan " + suite.prod_plan()) > 0 &&
           waiting.count("web in staging waits for approval: plan " + suite.staging_plan()) > 0;
  }, absl::Seconds(30));
  EXPECT_TRUE(waiting.count("web in prod waits for approval: plan " + suite.prod_plan())) << suite.prod_plan();
  EXPECT_TRUE(waiting.count("web in staging waits for approval: plan " + suite.staging_plan()));
  ASSERT_TRUE(SecureSuite::Eventually([&] {
    MutexLock lock(&mu);
    return got.size() >= waiting.size();
  }, absl::Seconds(30))) << suite.Logs();
  absl::SleepFor(absl::Seconds(1));
  {
    MutexLock lock(&mu);
    std::multiset<std::string> texts;
    for (const auto& body : got) texts.insert(body["text"].get<std::string>());
    EXPECT_EQ(texts, std::multiset<std::string>(waiting.begin(), waiting.end()));  // each once
  }
  v1::ListDeliveriesResponse deliveries;
  st = notifier->ListDeliveries(SecureSuite::Context(suite.CreateToken("viewer")).get(), v1::ListDeliveriesRequest(),
                                &deliveries);
  ASSERT_TRUE(st.ok()) << Describe(st);
  ASSERT_EQ(deliveries.deliveries_size(), static_cast<int>(waiting.size()));
  for (const auto& d : deliveries.deliveries()) EXPECT_EQ(d.state(), v1::DELIVERY_STATE_DELIVERED);
}

}  // namespace
}  // namespace ferry
