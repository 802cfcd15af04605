// The real ferry-notifier against a real ferry-audit, PostgreSQL, a local
// HTTP receiver (webhook, Slack, Teams) and a local SMTP sink: each event
// kind delivered once to each sink, retries, failures visible through the
// API and metrics, and SIGKILL mid-delivery.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/notifier.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "services/notifier/delivery_sender.h"
#include "tests/notifier/smtp_sink.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::ServiceProcess;

const std::string kSha = "0123456789abcdef0123456789abcdef01234567";
const std::string kHmacKey = "s3cret-hmac-key";

struct Received {
  std::string path;
  std::string delivery;   // X-Ferry-Delivery
  std::string event;      // X-Ferry-Event
  std::string signature;  // X-Ferry-Signature
  std::string body;
};

// An HTTP receiver on 127.0.0.1 that records every POST, and can be told to
// fail the next N requests with a status, or to hold requests until released.
class Receiver {
 public:
  Receiver() {
    server_.Post(R"(/(hook|slack|teams))", [this](const httplib::Request& req, httplib::Response& res) {
      int status = 200;
      {
        MutexLock lock(&mu_);
        got_.push_back({req.path, req.get_header_value("X-Ferry-Delivery"), req.get_header_value("X-Ferry-Event"),
                        req.get_header_value("X-Ferry-Signature"), req.body});
        if (fail_next_ > 0) {
          --fail_next_;
          status = fail_status_;
        }
        ++entered_;
        while (hold_) cv_.Wait(&mu_);
      }
      res.status = status;
      res.set_content(status == 200 ? "ok" : "receiver says no", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    Release();
    server_.stop();
    thread_.join();
  }
  std::string Url(const std::string& path) const { return absl::StrCat("http://127.0.0.1:", port_, path); }
  void FailNext(int n, int status) {
    MutexLock lock(&mu_);
    fail_next_ = n;
    fail_status_ = status;
  }
  void Hold() {
    MutexLock lock(&mu_);
    hold_ = true;
  }
  void Release() {
    MutexLock lock(&mu_);
    hold_ = false;
    cv_.SignalAll();
  }
  int entered() {
    MutexLock lock(&mu_);
    return entered_;
  }
  std::vector<Received> Got(const std::string& path) {
    MutexLock lock(&mu_);
    std::vector<Received> out;
    for (const Received& r : got_) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  CondVar cv_;
  std::vector<Received> got_ ABSL_GUARDED_BY(mu_);
  int fail_next_ ABSL_GUARDED_BY(mu_) = 0;
  int fail_status_ ABSL_GUARDED_BY(mu_) = 500;
  int entered_ ABSL_GUARDED_BY(mu_) = 0;
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
};

// The planner as the notifier sees it: ListApplications over the
// applications a test sets (their ferry.yaml notifications), on a real
// in-process gRPC server.
class FakePlanner final : public v1::Planner::Service {
 public:
  FakePlanner() {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakePlanner() override { server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5))); }
  std::string target() const { return absl::StrCat("127.0.0.1:", port_); }
  void Set(std::vector<v1::Application> apps) {
    MutexLock lock(&mu_);
    apps_ = std::move(apps);
  }
  grpc::Status ListApplications(grpc::ServerContext*, const v1::ListApplicationsRequest*,
                                v1::ListApplicationsResponse* out) override {
    MutexLock lock(&mu_);
    for (const v1::Application& a : apps_) *out->add_applications() = a;
    return grpc::Status::OK;
  }

 private:
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  Mutex mu_;
  std::vector<v1::Application> apps_ ABSL_GUARDED_BY(mu_);
};

// Waits until `done` or `timeout`; returns done().
template <typename F>
bool Eventually(F done, absl::Duration timeout = absl::Seconds(30)) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

struct Kind {
  v1::AuditAction action;
  std::string name;
};

const std::vector<Kind>& AllKinds() {
  static const auto* kinds = new std::vector<Kind>{
      {v1::AUDIT_ACTION_DEPLOYMENT_STARTED, "deployment_started"},
      {v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "deployment_succeeded"},
      {v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "deployment_failed"},
      {v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK, "deployment_rolled_back"},
      {v1::AUDIT_ACTION_PLAN_CREATED, "plan_waiting_for_approval"},
      {v1::AUDIT_ACTION_DRIFT_DETECTED, "drift_detected"},
      {v1::AUDIT_ACTION_DRIFT_HEALED, "drift_healed"},
      {v1::AUDIT_ACTION_SIGNATURE_REJECTED, "signature_rejected"},
      {v1::AUDIT_ACTION_WEBHOOK_REJECTED, "webhook_rejected"},
      {v1::AUDIT_ACTION_ACCESS_DENIED, "access_denied"}};
  return *kinds;
}

class NotifierBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-notifier-test");
    std::filesystem::create_directory(dir_ + "/declared");
    auto audit = ServiceProcess::Start("ferry-audit", {"--database-url=" + db_.url(), "--trial-ephemeral-key",
                                                       "--checkpoint-interval=1h"});
    ASSERT_TRUE(audit.ok()) << audit.status();
    audit_ = std::move(*audit);
    audit_stub_ = v1::Audit::NewStub(grpc::CreateChannel(audit_->grpc_target(), grpc::InsecureChannelCredentials()));
    std::ofstream(dir_ + "/hook.key") << kHmacKey << "\n";
    std::string all = "[";
    for (const Kind& k : AllKinds()) absl::StrAppend(&all, all.size() > 1 ? ", " : "", k.name);
    all += "]";
    std::ofstream(dir_ + "/subscriptions.yaml")
        << "subscriptions:\n"
        << "  - name: hook\n    events: " << all << "\n    template: \"{{event}} {{application}}/{{environment}} #{{sequence}}\"\n"
        << "    sink: {kind: webhook, url: \"" << receiver_.Url("/hook") << "\", hmac_secret: {file: hook.key}}\n"
        << "  - name: slack\n    application: web\n    events: " << all << "\n"
        << "    sink: {kind: slack, url: \"" << receiver_.Url("/slack") << "\"}\n"
        << "  - name: teams\n    environment: prod\n    events: " << all << "\n"
        << "    sink: {kind: teams, url: \"" << receiver_.Url("/teams") << "\"}\n"
        << "  - name: mail\n    events: " << all << "\n"
        << "    sink: {kind: email, smtp_url: \"smtp://127.0.0.1:" << smtp_.port()
        << "\", from: ferry@example.com, to: [oncall@example.com, dev@example.com]}\n";
    StartNotifier();
  }

  void StartNotifier() {
    auto n = ServiceProcess::Start("ferry-notifier",
                                   {"--database-url=" + db_.url(), "--audit-address=" + audit_->grpc_target(),
                                    "--no-commit-statuses", "--subscriptions-file=" + dir_ + "/subscriptions.yaml",
                                    "--planner-address=" + planner_.target(), "--declared-secrets-dir=" + dir_ + "/declared",
                                    "--secrets-dir=" + dir_, "--retry-initial=200ms", "--retry-max=1s",
                                    "--delivery-poll=100ms", "--delivery-lease=2s", "--max-attempts=4"});
    ASSERT_TRUE(n.ok()) << n.status();
    notifier_ = std::move(*n);
    stub_ = v1::Notifier::NewStub(grpc::CreateChannel(notifier_->grpc_target(), grpc::InsecureChannelCredentials()));
  }

  int64_t Append(v1::AuditAction action, const std::string& app = "web", const std::string& env = "prod",
                 const std::string& plan_state = "PLAN_STATE_PENDING") {
    v1::AppendRequest req;
    v1::Event* e = req.mutable_event();
    e->set_action(action);
    e->set_service(action == v1::AUDIT_ACTION_PLAN_CREATED ? "planner" : "deployer");
    e->mutable_actor()->set_id("ferry");
    e->set_message(absl::StrCat("something happened to ", app, " in ", env));
    e->set_idempotency_key(absl::StrCat("test/", ++keys_));
    e->mutable_subject()->set_application_id(app);
    e->mutable_subject()->set_environment_id(env);
    e->mutable_subject()->set_repository_id("shop");
    e->mutable_subject()->set_commit_sha(kSha);
    if (action == v1::AUDIT_ACTION_PLAN_CREATED) {
      (*e->mutable_details()->mutable_fields())["state"].set_string_value(plan_state);
    }
    grpc::ClientContext ctx;
    v1::AppendResponse resp;
    grpc::Status st = audit_stub_->Append(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.event().sequence();
  }

  std::vector<v1::Delivery> Deliveries(v1::DeliveryState state = v1::DELIVERY_STATE_UNSPECIFIED,
                                       const std::string& subscription = "") {
    std::vector<v1::Delivery> out;
    std::string token;
    do {
      v1::ListDeliveriesRequest req;
      req.set_state(state);
      req.set_subscription(subscription);
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListDeliveriesResponse resp;
      grpc::ClientContext ctx;
      grpc::Status st = stub_->ListDeliveries(&ctx, req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      out.insert(out.end(), resp.deliveries().begin(), resp.deliveries().end());
      token = resp.next_page_token();
    } while (!token.empty());
    return out;
  }

  std::string Metrics() {
    httplib::Client c("127.0.0.1", notifier_->metrics_port());
    auto r = c.Get("/metrics");
    return r ? r->body : "";
  }

  v1::Subscription Declared(const std::string& name, const std::string& app, v1::NotificationEvent event,
                            const std::string& hmac_file) {
    v1::Subscription s;
    s.set_name(name);
    s.set_application_id(app);
    s.add_events(event);
    s.set_template_("{{event}} {{application}} #{{sequence}}");
    s.mutable_sink()->set_kind(v1::SINK_KIND_WEBHOOK);
    s.mutable_sink()->set_url(receiver_.Url("/hook"));
    if (!hmac_file.empty()) s.mutable_sink()->mutable_hmac_secret()->set_file(hmac_file);
    return s;
  }
  std::map<std::string, std::string> SourceBySubscription() {
    v1::ListSubscriptionsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = stub_->ListSubscriptions(&ctx, v1::ListSubscriptionsRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    std::map<std::string, std::string> out;
    for (const v1::Subscription& s : resp.subscriptions()) out[s.name()] = s.source();
    return out;
  }

  testing::TestDatabase db_;
  std::string dir_;
  FakePlanner planner_;
  Receiver receiver_;
  testing::SmtpSink smtp_;
  std::unique_ptr<ServiceProcess> audit_;
  std::unique_ptr<ServiceProcess> notifier_;
  std::unique_ptr<v1::Audit::Stub> audit_stub_;
  std::unique_ptr<v1::Notifier::Stub> stub_;
  int keys_ = 0;
};

TEST_F(NotifierBinaryTest, EachEventKindIsDeliveredOnceToEachSink) {
  // Noise that notifies nobody: an auto-approved plan, a revision.
  Append(v1::AUDIT_ACTION_PLAN_CREATED, "web", "prod", "PLAN_STATE_APPROVED");
  Append(v1::AUDIT_ACTION_REVISION_DETECTED);
  std::map<std::string, int64_t> sequence_of;
  for (const Kind& k : AllKinds()) sequence_of[k.name] = Append(k.action);
  // Filtered out by the slack (application web) and teams (environment
  // prod) subscriptions, delivered to hook and mail.
  Append(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "api", "staging");
  const size_t n = AllKinds().size();
  ASSERT_TRUE(Eventually([&] {
    return receiver_.Got("/hook").size() >= n + 1 && receiver_.Got("/slack").size() >= n &&
           receiver_.Got("/teams").size() >= n && smtp_.Mails().size() >= n + 1;
  })) << notifier_->Log();
  absl::SleepFor(absl::Seconds(1));  // nothing more comes
  EXPECT_EQ(receiver_.Got("/hook").size(), n + 1);
  EXPECT_EQ(receiver_.Got("/slack").size(), n);
  EXPECT_EQ(receiver_.Got("/teams").size(), n);
  EXPECT_EQ(smtp_.Mails().size(), n + 1);

  std::set<std::string> hook_events;
  for (const Received& r : receiver_.Got("/hook")) {
    // Signed with the key from the secrets directory, over the exact body.
    EXPECT_EQ(r.signature, "sha256=" + notifier::HmacSha256Hex(kHmacKey, r.body));
    nlohmann::json body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["event"], r.event);
    EXPECT_EQ(body["id"], r.delivery);
    if (body["audit_event"]["subject"]["application_id"] == "api") continue;
    hook_events.insert(r.event);
    EXPECT_EQ(body["text"], absl::StrCat(r.event, " web/prod #", sequence_of[r.event]));
    EXPECT_EQ(r.delivery, absl::StrCat(sequence_of[r.event], "/hook"));
  }
  EXPECT_EQ(hook_events.size(), n);
  std::set<std::string> slack_texts;
  for (const Received& r : receiver_.Got("/slack")) {
    nlohmann::json body = nlohmann::json::parse(r.body);
    EXPECT_TRUE(body.contains("text"));
    slack_texts.insert(body["text"].get<std::string>().substr(0, body["text"].get<std::string>().find(']') + 1));
    EXPECT_TRUE(r.signature.empty());
  }
  EXPECT_EQ(slack_texts.size(), n);
  for (const Received& r : receiver_.Got("/teams")) {
    EXPECT_EQ(nlohmann::json::parse(r.body)["@type"], "MessageCard");
  }
  std::set<std::string> mail_events;
  for (const auto& m : smtp_.Mails()) {
    EXPECT_EQ(m.from, "ferry@example.com");
    EXPECT_EQ(m.to, (std::vector<std::string>{"oncall@example.com", "dev@example.com"}));
    size_t at = m.data.find("X-Ferry-Event: ");
    ASSERT_NE(at, std::string::npos) << m.data;
    mail_events.insert(m.data.substr(at + 15, m.data.find("\r\n", at) - at - 15));
    EXPECT_NE(m.data.find("Subject: ["), std::string::npos);
  }
  EXPECT_EQ(mail_events.size(), n);
  std::vector<v1::Delivery> all = Deliveries();
  EXPECT_EQ(all.size(), 4 * n + 2);
  for (const v1::Delivery& d : all) {
    EXPECT_EQ(d.state(), v1::DELIVERY_STATE_DELIVERED) << d.ShortDebugString();
    EXPECT_EQ(d.attempts(), 1);
  }
}

TEST_F(NotifierBinaryTest, RetriesWhenTheReceiverFailsThenDelivers) {
  receiver_.FailNext(2, 503);
  int64_t seq = Append(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "other", "dev");  // hook and mail only
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_DELIVERED, "hook").size() == 1; }))
      << notifier_->Log();
  std::vector<Received> got = receiver_.Got("/hook");
  ASSERT_EQ(got.size(), 3u);  // two refusals, then the delivery
  for (const Received& r : got) {
    EXPECT_EQ(r.delivery, absl::StrCat(seq, "/hook"));
    EXPECT_EQ(r.body, got[0].body);  // the same bytes each time
  }
  v1::Delivery d = Deliveries(v1::DELIVERY_STATE_DELIVERED, "hook")[0];
  EXPECT_EQ(d.attempts(), 3);
  EXPECT_EQ(d.event(), v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED);
  EXPECT_TRUE(d.has_delivered_time());
  std::string metrics = Metrics();
  EXPECT_NE(metrics.find(R"(ferry_notifier_deliveries_total{outcome="retry",sink="webhook"} 2)"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find(R"(ferry_notifier_deliveries_total{outcome="delivered",sink="webhook"} 1)"),
            std::string::npos);
}

TEST_F(NotifierBinaryTest, RetriesAnEmailWhenTheSmtpServerFailsThenDeliversItOnce) {
  smtp_.FailNext(2, "451 4.3.0 try again later");
  int64_t seq = Append(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "other", "dev");  // hook and mail only
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_DELIVERED, "mail").size() == 1; }))
      << notifier_->Log();
  v1::Delivery d = Deliveries(v1::DELIVERY_STATE_DELIVERED, "mail")[0];
  EXPECT_EQ(d.event_sequence(), seq);
  EXPECT_EQ(d.attempts(), 3);  // two refusals, then accepted
  ASSERT_EQ(smtp_.Mails().size(), 1u) << "refused messages are not kept; the accepted one once";
  EXPECT_NE(smtp_.Mails()[0].data.find(absl::StrCat("X-Ferry-Delivery: ", seq, "/mail")), std::string::npos);
  std::string metrics = Metrics();
  EXPECT_NE(metrics.find(R"(ferry_notifier_deliveries_total{outcome="retry",sink="email"} 2)"), std::string::npos)
      << metrics;
}

TEST_F(NotifierBinaryTest, GivesUpAndShowsTheFailureThroughTheApiAndMetrics) {
  receiver_.FailNext(100, 500);
  Append(v1::AUDIT_ACTION_DRIFT_DETECTED, "other", "dev");
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_FAILED, "hook").size() == 1; }))
      << notifier_->Log();
  v1::Delivery d = Deliveries(v1::DELIVERY_STATE_FAILED, "hook")[0];
  EXPECT_EQ(d.attempts(), 4);  // --max-attempts
  EXPECT_EQ(d.last_error(), absl::StrCat("webhook at http://127.0.0.1:", receiver_.Url("").substr(17),
                                         " answered HTTP 500: receiver says no"));
  EXPECT_EQ(receiver_.Got("/hook").size(), 4u);
  ASSERT_TRUE(Eventually([&] {
    return absl::StrContains(Metrics(), "ferry_notifier_deliveries_failed 1");
  })) << Metrics();
  std::string metrics = Metrics();
  EXPECT_NE(metrics.find(R"(ferry_notifier_deliveries_total{outcome="failed",sink="webhook"} 1)"), std::string::npos);

  // A 4xx is not retried: the receiver will not change its mind.
  receiver_.FailNext(1, 404);
  Append(v1::AUDIT_ACTION_DRIFT_HEALED, "other", "dev");
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_FAILED, "hook").size() == 2; }));
  EXPECT_EQ(Deliveries(v1::DELIVERY_STATE_FAILED, "hook")[0].attempts(), 1);
}

TEST_F(NotifierBinaryTest, NotLostNorRecordedTwiceWhenKilledMidDelivery) {
  receiver_.Hold();
  int64_t seq = Append(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK, "other", "dev");
  ASSERT_TRUE(Eventually([&] { return receiver_.entered() >= 1; })) << notifier_->Log();
  notifier_->Kill();  // while the receiver holds the request
  receiver_.Release();
  // Events appended while it is down are read from the stored cursor later.
  std::vector<int64_t> later;
  for (int i = 0; i < 20; ++i) later.push_back(Append(v1::AUDIT_ACTION_DEPLOYMENT_STARTED, "other", "dev"));
  StartNotifier();
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_DELIVERED, "hook").size() == 21; }))
      << notifier_->Log();
  // Kill it again right after new events arrive, mid-ingest or mid-send.
  for (int i = 0; i < 20; ++i) later.push_back(Append(v1::AUDIT_ACTION_DEPLOYMENT_STARTED, "other", "dev"));
  absl::SleepFor(absl::Milliseconds(150));
  notifier_->Kill();
  StartNotifier();
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_DELIVERED, "hook").size() == 41; }))
      << notifier_->Log();
  absl::SleepFor(absl::Seconds(3));  // past the lease: nothing more comes

  // One delivery per event in the outbox, all delivered.
  std::vector<v1::Delivery> rows = Deliveries(v1::DELIVERY_STATE_UNSPECIFIED, "hook");
  EXPECT_EQ(rows.size(), 41u);
  std::set<int64_t> row_events;
  for (const auto& d : rows) row_events.insert(d.event_sequence());
  EXPECT_EQ(row_events.size(), 41u);
  // Every event reached the receiver. The one whose answer was lost with
  // the killed process was sent again (at least once), with the same
  // X-Ferry-Delivery id so the receiver can tell; none other came twice but
  // those in flight at the second kill.
  std::map<std::string, int> times;
  for (const Received& r : receiver_.Got("/hook")) ++times[r.delivery];
  EXPECT_EQ(times.size(), 41u);
  EXPECT_EQ(times[absl::StrCat(seq, "/hook")], 2);
  for (int64_t s : later) EXPECT_GE(times[absl::StrCat(s, "/hook")], 1) << s;
  int repeated = 0;
  for (const auto& [id, count] : times) repeated += count - 1;
  EXPECT_LE(repeated, 1 + 20) << "only deliveries in flight when killed may repeat";
  // The same for e-mail: each event once in the outbox, each delivered.
  EXPECT_EQ(Deliveries(v1::DELIVERY_STATE_DELIVERED, "mail").size(), 41u);
}

TEST_F(NotifierBinaryTest, SubscriptionsByApi) {
  v1::CreateSubscriptionRequest req;
  v1::Subscription* s = req.mutable_subscription();
  s->set_name("api-hook");
  s->set_environment_id("qa");
  s->add_events(v1::NOTIFICATION_EVENT_DEPLOYMENT_SUCCEEDED);
  s->set_template_("{{application}} is live in {{environment}} at {{short_commit}}");
  s->mutable_sink()->set_kind(v1::SINK_KIND_SLACK);
  s->mutable_sink()->set_url(receiver_.Url("/slack"));
  v1::Subscription created;
  {
    grpc::ClientContext ctx;
    grpc::Status st = stub_->CreateSubscription(&ctx, req, &created);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  EXPECT_EQ(created.source(), "api");
  // Recorded in the audit trail, by whom (no access control here: anonymous).
  ASSERT_TRUE(Eventually([&] {
    v1::QueryRequest q;
    q.mutable_filter()->add_actions(v1::AUDIT_ACTION_SUBSCRIPTION_CREATED);
    v1::QueryResponse r;
    grpc::ClientContext ctx;
    if (!audit_stub_->Query(&ctx, q, &r).ok() || r.events_size() != 1) return false;
    EXPECT_EQ(r.events(0).message(), "subscription api-hook created: slack for deployment_succeeded");
    EXPECT_EQ(r.events(0).service(), "notifier");
    EXPECT_EQ(r.events(0).subject().environment_id(), "qa");
    return true;
  })) << notifier_->Log();
  {
    grpc::ClientContext ctx;
    v1::Subscription again;
    EXPECT_EQ(stub_->CreateSubscription(&ctx, req, &again).error_code(), grpc::StatusCode::ALREADY_EXISTS);
  }
  {
    v1::CreateSubscriptionRequest bad = req;
    bad.mutable_subscription()->set_name("bad");
    bad.mutable_subscription()->set_template_("{{token}}");
    grpc::ClientContext ctx;
    v1::Subscription out;
    grpc::Status st = stub_->CreateSubscription(&ctx, bad, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("subscription.template: unknown placeholder {{token}}"), std::string::npos);
  }
  Append(v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED, "shop", "qa");
  ASSERT_TRUE(Eventually([&] { return Deliveries(v1::DELIVERY_STATE_DELIVERED, "api-hook").size() == 1; }));
  bool seen = false;
  for (const Received& r : receiver_.Got("/slack")) {
    if (nlohmann::json::parse(r.body)["text"] == "shop is live in qa at 0123456789ab") seen = true;
  }
  EXPECT_TRUE(seen);
  {
    grpc::ClientContext ctx;
    v1::ListSubscriptionsResponse list;
    ASSERT_TRUE(stub_->ListSubscriptions(&ctx, v1::ListSubscriptionsRequest(), &list).ok());
    std::set<std::string> names;
    for (const auto& one : list.subscriptions()) names.insert(one.name() + ":" + one.source());
    EXPECT_EQ(names, (std::set<std::string>{"api-hook:api", "hook:config", "mail:config", "slack:config",
                                            "teams:config"}));
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteSubscriptionRequest del;
    del.set_name("hook");
    v1::DeleteSubscriptionResponse out;
    EXPECT_EQ(stub_->DeleteSubscription(&ctx, del, &out).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteSubscriptionRequest del;
    del.set_name("api-hook");
    v1::DeleteSubscriptionResponse out;
    EXPECT_TRUE(stub_->DeleteSubscription(&ctx, del, &out).ok());
  }
  // The API subscription survives a restart; deleted, it is gone.
  ASSERT_TRUE(notifier_->Stop().ok());
  StartNotifier();
  grpc::ClientContext ctx;
  v1::ListSubscriptionsResponse list;
  ASSERT_TRUE(stub_->ListSubscriptions(&ctx, v1::ListSubscriptionsRequest(), &list).ok());
  EXPECT_EQ(list.subscriptions_size(), 4);
}

TEST_F(NotifierBinaryTest, SubscriptionsDeclaredInFerryYamlFollowTheApplication) {
  std::ofstream(dir_ + "/declared/web.key") << "web-key\n";
  v1::Application web;
  web.set_id("web");
  *web.add_notifications() = Declared("failures", "web", v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED, "web.key");
  // Names a secret of the notifier's own --secrets-dir (where Git host
  // tokens live): refused, since whoever can push wrote it.
  *web.add_notifications() = Declared("steal", "web", v1::NOTIFICATION_EVENT_DEPLOYMENT_FAILED, "hook.key");
  planner_.Set({web});
  // The planner's APPLICATION_UPDATED: the events after it see the new set.
  Append(v1::AUDIT_ACTION_APPLICATION_UPDATED, "web", "");
  int64_t failed = Append(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "web", "staging");
  Append(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "api", "staging");  // another application: not for web's
  const std::string id = absl::StrCat(failed, "/web/failures");
  auto declared_got = [&] {
    std::vector<Received> out;
    for (const Received& r : receiver_.Got("/hook")) {
      if (absl::StrContains(r.delivery, "/web/")) out.push_back(r);
    }
    return out;
  };
  ASSERT_TRUE(Eventually([&] { return !declared_got().empty(); }));
  std::vector<Received> got = declared_got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].delivery, id);
  EXPECT_EQ(got[0].signature, "sha256=" + notifier::HmacSha256Hex("web-key", got[0].body));
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["text"], absl::StrCat("deployment_failed web #", failed));
  ASSERT_TRUE(Eventually([&] { return !Deliveries(v1::DELIVERY_STATE_FAILED, "web/steal").empty(); }));
  v1::Delivery steal = Deliveries(v1::DELIVERY_STATE_FAILED, "web/steal").at(0);
  EXPECT_EQ(steal.attempts(), 1) << "a refused reference is not retried";
  EXPECT_TRUE(absl::StrContains(steal.last_error(), "--declared-secrets-dir")) << steal.last_error();
  EXPECT_FALSE(absl::StrContains(steal.last_error(), kHmacKey));

  std::map<std::string, std::string> sources = SourceBySubscription();
  EXPECT_EQ(sources["web/failures"], "declared");
  EXPECT_EQ(sources["hook"], "config");
  {
    v1::DeleteSubscriptionRequest req;
    req.set_name("web/failures");
    v1::DeleteSubscriptionResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = stub_->DeleteSubscription(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << st.error_message();
  }

  // Removed from ferry.yaml: gone at the next application event; the
  // configuration file's are untouched, and it is audited.
  web.clear_notifications();
  planner_.Set({web});
  Append(v1::AUDIT_ACTION_APPLICATION_UPDATED, "web", "");
  int64_t after = Append(v1::AUDIT_ACTION_DEPLOYMENT_FAILED, "web", "staging");
  ASSERT_TRUE(Eventually([&] {
    for (const Received& r : receiver_.Got("/hook")) {
      if (r.delivery == absl::StrCat(after, "/hook")) return true;
    }
    return false;
  }));
  EXPECT_EQ(declared_got().size(), 1u) << "nothing more for the removed subscription";
  sources = SourceBySubscription();
  EXPECT_EQ(sources.count("web/failures"), 0u);
  EXPECT_EQ(sources["hook"], "config");
  EXPECT_TRUE(Eventually([&] {
    v1::QueryRequest q;
    q.mutable_filter()->add_actions(v1::AUDIT_ACTION_SUBSCRIPTION_DELETED);
    v1::QueryResponse resp;
    grpc::ClientContext ctx;
    if (!audit_stub_->Query(&ctx, q, &resp).ok()) return false;
    for (const v1::Event& e : resp.events()) {
      if (e.message() == "subscription web/failures removed (declared by application web)") return true;
    }
    return false;
  }));
}

}  // namespace
}  // namespace ferry
