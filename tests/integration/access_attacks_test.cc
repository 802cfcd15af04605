// The attacks of issue #16, each against the four real services over TLS
// with access control on (tests/integration/secure_suite.h). Each case says
// why it fails on the code before #16, where every port was plaintext and
// open, the actor came from `x-ferry-actor` or the request, and the
// service-only calls answered anyone. (A client certificate from another CA
// is tests/common/auth/tls_test.cc's AClientCertificateFromAnotherCaIsRefusedAtTheHandshake;
// a commit the signature policy rejected is tests/integration/signature_policy_test.cc.)

#include <cjose/cjose.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "tests/integration/secure_suite.h"

namespace ferry {
namespace {

using testing::Describe;
using testing::SecureSuite;

grpc::StatusCode WhoAmI(SecureSuite& suite, const std::string& token, v1::WhoAmIResponse* who = nullptr) {
  v1::WhoAmIResponse out;
  grpc::Status s = suite.Access()->WhoAmI(SecureSuite::Context(token).get(), v1::WhoAmIRequest(), &out);
  if (who != nullptr) *who = out;
  return s.error_code();
}

grpc::StatusCode ListApplications(SecureSuite& suite, const std::string& token) {
  v1::ListApplicationsResponse out;
  return suite.Planner()
      ->ListApplications(SecureSuite::Context(token).get(), v1::ListApplicationsRequest(), &out)
      .error_code();
}

// (a) Before #16 anyone who reached the ports registered a repository, an
// environment with `approval: auto` and an application, and the deployer ran
// what the repository said: these calls succeeded.
TEST(AccessAttacksTest, UnauthenticatedCallersCreateNothing) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  for (const std::string& token : {std::string(), std::string("ferry_0123456789ab_") + std::string(43, 'A')}) {
    {
      v1::CreateRepositoryRequest req;
      req.mutable_repository()->set_id("evil");
      req.mutable_repository()->set_url(suite.dir() + "/evil.git");
      v1::Repository out;
      auto ctx = SecureSuite::Context(token);
      ctx->AddMetadata("x-ferry-actor", "admin");
      grpc::Status s = suite.RepoWatcher()->CreateRepository(ctx.get(), req, &out);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
    }
    {
      v1::CreateEnvironmentRequest req;
      req.mutable_environment()->set_id("evil");
      req.mutable_environment()->set_approval(v1::APPROVAL_POLICY_AUTO);
      req.mutable_environment()->mutable_target()->set_kind(v1::TARGET_KIND_HOST);
      req.mutable_environment()->mutable_target()->mutable_host()->set_root_dir(suite.dir() + "/evil");
      v1::Environment out;
      auto ctx = SecureSuite::Context(token);
      ctx->AddMetadata("x-ferry-actor", "admin");
      grpc::Status s = suite.Planner()->CreateEnvironment(ctx.get(), req, &out);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
    }
    {
      v1::CreateApplicationRequest req;
      req.mutable_application()->set_id("evil");
      req.mutable_application()->set_repository_id("evil");
      req.mutable_application()->set_path("apps/evil");
      req.mutable_application()->add_environment_ids("evil");
      v1::Application out;
      auto ctx = SecureSuite::Context(token);
      ctx->AddMetadata("x-ferry-actor", "admin");
      grpc::Status s = suite.Planner()->CreateApplication(ctx.get(), req, &out);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
    }
  }
  // Nothing was created.
  const std::string admin = suite.admin_token();
  v1::ListRepositoriesResponse repos;
  ASSERT_TRUE(suite.RepoWatcher()->ListRepositories(SecureSuite::Context(admin).get(), {}, &repos).ok());
  EXPECT_EQ(repos.repositories_size(), 0) << repos.ShortDebugString();
  v1::ListEnvironmentsResponse envs;
  ASSERT_TRUE(suite.Planner()->ListEnvironments(SecureSuite::Context(admin).get(), {}, &envs).ok());
  EXPECT_EQ(envs.environments_size(), 0) << envs.ShortDebugString();
  v1::ListApplicationsResponse apps;
  ASSERT_TRUE(suite.Planner()->ListApplications(SecureSuite::Context(admin).get(), {}, &apps).ok());
  EXPECT_EQ(apps.applications_size(), 0) << apps.ShortDebugString();
}

// (b) Before #16 the actor came from the request's `actor` field or the
// `x-ferry-actor` metadata: the decision and the signed PLAN_APPROVED event
// named "cto".
TEST(AccessAttacksTest, AForgedActorIsIgnoredTheApproverIsRecorded) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  ASSERT_TRUE(suite.Seed()) << suite.Logs();
  const std::string approver = suite.CreateToken("approver");
  v1::ApprovePlanRequest req;
  req.set_plan_id(suite.prod_plan());
  req.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
  req.mutable_actor()->set_id("cto");
  req.set_comment("approved by the CTO, honest");
  // Only a Ferry service may say whom it acts for: from a person's tool the
  // metadata is ignored.
  {
    auto who_ctx = SecureSuite::Context(approver);
    who_ctx->AddMetadata("x-ferry-on-behalf-of", "cto");
    v1::WhoAmIResponse who;
    grpc::Status s = suite.Access()->WhoAmI(who_ctx.get(), {}, &who);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(who.subject(), "user:approver");
    EXPECT_EQ(who.acting_for(), "") << who.ShortDebugString();
  }
  {
    auto who_ctx = SecureSuite::Context("");
    who_ctx->AddMetadata("x-ferry-on-behalf-of", "alice");
    v1::WhoAmIResponse who;
    grpc::Status s = v1::Access::NewStub(suite.ServiceChannel("planner", "deployer"))->WhoAmI(who_ctx.get(), {}, &who);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(who.subject(), "service:deployer");
    EXPECT_EQ(who.acting_for(), "alice") << who.ShortDebugString();
  }
  auto ctx = SecureSuite::Context(approver);
  ctx->AddMetadata("x-ferry-actor", "cto");
  ctx->AddMetadata("x-ferry-on-behalf-of", "cto");
  v1::Plan plan;
  grpc::Status s = suite.Planner()->ApprovePlan(ctx.get(), req, &plan);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(plan.decision().actor().id(), "approver") << plan.ShortDebugString();
  EXPECT_EQ(suite.GetPlan(suite.prod_plan()).decision().actor().id(), "approver");

  std::vector<v1::Event> approved;
  ASSERT_TRUE(SecureSuite::Eventually([&] {
    approved.clear();
    for (const v1::Event& e : suite.Events(v1::AUDIT_ACTION_PLAN_APPROVED)) {
      if (e.subject().plan_id() == suite.prod_plan()) approved.push_back(e);
    }
    return !approved.empty();
  })) << suite.Logs();
  for (const v1::Event& e : approved) {
    EXPECT_EQ(e.actor().id(), "approver") << e.ShortDebugString();
    EXPECT_FALSE(absl::StrContains(e.ShortDebugString(), "\"cto\"")) << e.ShortDebugString();
  }
  // And no event anywhere names cto as its actor.
  v1::QueryRequest q;
  q.mutable_filter()->set_actor("cto");
  v1::QueryResponse out;
  ASSERT_TRUE(suite.Audit()->Query(SecureSuite::Context(suite.admin_token()).get(), q, &out).ok());
  EXPECT_EQ(out.events_size(), 0) << out.ShortDebugString();
}

// A person's rollback goes through the deployer, which asks the planner for
// the plan on that person's behalf (x-ferry-on-behalf-of, believed only from
// a Ferry service): the plan and its events name the person. Before #16 the
// deployer passed the request's `actor` along, whatever it said.
TEST(AccessAttacksTest, ARollbackThroughTheDeployerNamesThePersonWhoAskedForIt) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  ASSERT_TRUE(suite.Seed()) << suite.Logs();
  const std::string admin = suite.admin_token();
  {
    v1::ApprovePlanRequest req;
    req.set_plan_id(suite.staging_plan());
    v1::Plan out;
    grpc::Status s = suite.Planner()->ApprovePlan(SecureSuite::Context(admin).get(), req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  ASSERT_TRUE(suite.WaitForPlan(suite.staging_plan(), v1::PLAN_STATE_SUCCEEDED)) << suite.Logs();
  const std::string second = suite.CommitGreeting("second");
  std::string second_plan;
  {
    v1::PlanRevisionRequest req;
    req.set_application_id("web");
    req.set_environment_id("staging");
    req.mutable_revision()->set_sha(second);
    req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
    req.set_approve(true);
    v1::PlanRevisionResponse out;
    grpc::Status s = suite.Planner()->PlanRevision(SecureSuite::Context(admin, absl::Seconds(60)).get(), req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    second_plan = out.plan().id();
  }
  ASSERT_TRUE(suite.WaitForPlan(second_plan, v1::PLAN_STATE_SUCCEEDED)) << suite.Logs();

  const std::string op = suite.CreateToken("operator");
  v1::RollbackRequest req;
  req.set_application_id("web");
  req.set_environment_id("staging");
  req.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
  req.mutable_actor()->set_id("cto");
  auto ctx = SecureSuite::Context(op, absl::Seconds(60));
  ctx->AddMetadata("x-ferry-on-behalf-of", "cto");
  v1::RollbackResponse out;
  grpc::Status s = suite.Deployer()->Rollback(ctx.get(), req, &out);
  ASSERT_TRUE(s.ok()) << Describe(s) << suite.Logs();
  const v1::Plan plan = suite.GetPlan(out.plan_id());
  EXPECT_EQ(plan.trigger(), v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(plan.target_revision().sha(), suite.head());
  EXPECT_EQ(plan.requested_by().id(), "operator") << plan.requested_by().ShortDebugString();
  EXPECT_EQ(plan.requested_by().display_name(), "operator via deployer") << plan.requested_by().ShortDebugString();
  EXPECT_EQ(plan.decision().actor().id(), "operator") << plan.decision().ShortDebugString();
  // Every event about the rollback's plan names the operator (or Ferry itself).
  std::vector<v1::Event> events;
  ASSERT_TRUE(SecureSuite::Eventually([&] {
    v1::QueryRequest q;
    q.mutable_filter()->set_plan_id(out.plan_id());
    q.set_page_size(1000);
    v1::QueryResponse r;
    if (!suite.Audit()->Query(SecureSuite::Context(admin).get(), q, &r).ok()) return false;
    events.assign(r.events().begin(), r.events().end());
    return !events.empty();
  })) << suite.Logs();
  for (const v1::Event& e : events) {
    EXPECT_TRUE(e.actor().id() == "operator" || e.actor().id() == "ferry" || e.actor().id() == "deployer")
        << e.ShortDebugString();
    EXPECT_NE(e.actor().id(), "cto") << e.ShortDebugString();
  }
  bool by_operator = false;
  for (const v1::Event& e : events) by_operator |= e.actor().id() == "operator";
  EXPECT_TRUE(by_operator) << "no event names the operator";
}

// (c) Before #16 anyone could AcknowledgePlan and ReportPlanResult(SUCCEEDED)
// a plan: the fake success opened the promotion gate. Now only the
// deployer's certificate may, not an admin's token nor another service's.
TEST(AccessAttacksTest, OnlyTheDeployerAcknowledgesAndReportsPlans) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  ASSERT_TRUE(suite.Seed()) << suite.Logs();
  const v1::Plan before = suite.GetPlan(suite.staging_plan());
  struct Attacker {
    std::string name, token, cert;
  };
  for (const Attacker& a : std::vector<Attacker>{{"admin token", suite.admin_token(), ""},
                                                 {"planner certificate", "", "planner"},
                                                 {"repo-watcher certificate", "", "repo-watcher"}}) {
    auto stub = v1::Planner::NewStub(a.cert.empty() ? suite.UserChannel("planner")
                                                    : suite.ServiceChannel("planner", a.cert));
    v1::AcknowledgePlanRequest ack;
    ack.set_plan_id(suite.staging_plan());
    ack.set_deployment_id("fake-deployment");
    v1::AcknowledgePlanResponse ack_out;
    grpc::Status s = stub->AcknowledgePlan(SecureSuite::Context(a.token).get(), ack, &ack_out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << a.name << ": " << Describe(s);
    v1::ReportPlanResultRequest report;
    report.set_plan_id(suite.staging_plan());
    report.set_deployment_id("fake-deployment");
    report.set_state(v1::PLAN_STATE_SUCCEEDED);
    report.mutable_live_revision()->set_sha(suite.head());
    v1::ReportPlanResultResponse report_out;
    s = stub->ReportPlanResult(SecureSuite::Context(a.token).get(), report, &report_out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << a.name << ": " << Describe(s);
  }
  const v1::Plan after = suite.GetPlan(suite.staging_plan());
  EXPECT_EQ(after.state(), v1::PLAN_STATE_PENDING);
  EXPECT_EQ(after.ShortDebugString(), before.ShortDebugString());
}

v1::Event AnEvent(const std::string& service, const std::string& key) {
  v1::Event e;
  e.set_service(service);
  e.set_action(v1::AUDIT_ACTION_PLAN_APPROVED);
  e.mutable_actor()->set_kind(v1::ACTOR_KIND_SYSTEM);
  e.mutable_actor()->set_id("ferry");
  e.set_message("an event");
  e.set_idempotency_key(key);
  return e;
}

// (d) Before #16 anyone appended audit events with any `service`, and a
// pre-claimed idempotency key made the real event a dropped duplicate.
TEST(AccessAttacksTest, AppendIsForServicesWhichCannotSpeakForEachOther) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  const std::string admin = suite.admin_token();
  {
    v1::AppendRequest req;
    *req.mutable_event() = AnEvent("planner", "user-key");
    v1::AppendResponse out;
    grpc::Status s = suite.Audit()->Append(SecureSuite::Context(admin).get(), req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
    v1::AppendBatchRequest batch;
    *batch.add_events() = AnEvent("planner", "user-key");
    v1::AppendBatchResponse batch_out;
    s = suite.Audit()->AppendBatch(SecureSuite::Context(admin).get(), batch, &batch_out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  }
  // The repo-watcher claims to be the planner, with the planner's next key.
  auto as_watcher = v1::Audit::NewStub(suite.ServiceChannel("audit", "repo-watcher"));
  {
    v1::AppendRequest req;
    *req.mutable_event() = AnEvent("planner", "planner:plan-approved:p-1");
    v1::AppendResponse out;
    grpc::Status s = as_watcher->Append(SecureSuite::Context("").get(), req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(out.event().service(), "repo-watcher");
    EXPECT_FALSE(out.duplicate());
  }
  {
    v1::AppendBatchRequest batch;
    *batch.add_events() = AnEvent("deployer", "deployer:batch-1");
    v1::AppendBatchResponse out;
    grpc::Status s = as_watcher->AppendBatch(SecureSuite::Context("").get(), batch, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    ASSERT_EQ(out.results_size(), 1);
    EXPECT_EQ(out.results(0).event().service(), "repo-watcher");
  }
  // The planner's own event with that key is stored, not dropped.
  auto as_planner = v1::Audit::NewStub(suite.ServiceChannel("audit", "planner"));
  {
    v1::AppendRequest req;
    *req.mutable_event() = AnEvent("planner", "planner:plan-approved:p-1");
    v1::AppendResponse out;
    grpc::Status s = as_planner->Append(SecureSuite::Context("").get(), req, &out);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_FALSE(out.duplicate());
    EXPECT_EQ(out.event().service(), "planner");
  }
  v1::QueryRequest q;
  q.set_page_size(1000);
  v1::QueryResponse events;
  ASSERT_TRUE(suite.Audit()->Query(SecureSuite::Context(admin).get(), q, &events).ok());
  int watcher = 0, planner = 0;
  for (const v1::Event& e : events.events()) {
    EXPECT_NE(e.idempotency_key(), "user-key") << "appended by a user: " << e.ShortDebugString();
    if (e.idempotency_key() != "planner:plan-approved:p-1") continue;
    if (e.service() == "repo-watcher") ++watcher;
    if (e.service() == "planner") ++planner;
  }
  EXPECT_EQ(watcher, 1) << events.ShortDebugString();
  EXPECT_EQ(planner, 1) << events.ShortDebugString();
}

// (e) Before #16 no credential was checked at all: each of these calls was
// served (as `anonymous` or as whoever x-ferry-actor named).
TEST(AccessAttacksTest, ExpiredRevokedMalformedAndWrongSecretTokensAreRefused) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  const std::string admin = suite.admin_token();

  const std::string short_lived = suite.CreateToken("viewer", {}, /*ttl_seconds=*/2);
  const grpc::StatusCode fresh = WhoAmI(suite, short_lived);
  v1::Token revoked_token;
  const std::string revoked = suite.CreateToken("viewer", {}, 0, &revoked_token);
  ASSERT_EQ(WhoAmI(suite, revoked), grpc::StatusCode::OK);
  {
    // Its use is recorded (to the minute), never its secret.
    v1::ListTokensRequest list;
    list.set_subject("viewer");
    v1::ListTokensResponse tokens;
    grpc::Status listed = suite.Access()->ListTokens(SecureSuite::Context(admin).get(), list, &tokens);
    ASSERT_TRUE(listed.ok()) << Describe(listed);
    bool found = false;
    for (const v1::Token& t : tokens.tokens()) {
      EXPECT_FALSE(absl::StrContains(t.ShortDebugString(), revoked.substr(19)));
      if (t.id() != revoked_token.id()) continue;
      found = true;
      EXPECT_TRUE(t.has_last_used_time()) << t.ShortDebugString();
    }
    EXPECT_TRUE(found) << tokens.ShortDebugString();
  }
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(revoked_token.id());
  v1::RevokeTokenResponse revoke_out;
  grpc::Status s = suite.Access()->RevokeToken(SecureSuite::Context(admin).get(), revoke, &revoke_out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  // At once in the planner, which revokes (though it verified the token a
  // moment ago and caches verified tokens for 2 s).
  EXPECT_EQ(WhoAmI(suite, revoked), grpc::StatusCode::UNAUTHENTICATED);
  // Revoked everywhere within the verifiers' cache time.
  EXPECT_TRUE(SecureSuite::Eventually(
      [&] {
        v1::QueryResponse out;
        return suite.Audit()->Query(SecureSuite::Context(revoked).get(), {}, &out).error_code() ==
               grpc::StatusCode::UNAUTHENTICATED;
      },
      absl::Seconds(5)));

  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(fresh, grpc::StatusCode::OK) << "before it expired";
  EXPECT_EQ(WhoAmI(suite, short_lived), grpc::StatusCode::UNAUTHENTICATED) << "expired";

  // Right id, wrong secret: the admin token's id with another secret.
  std::string wrong_secret = admin;
  wrong_secret.back() = wrong_secret.back() == 'A' ? 'B' : 'A';
  for (const std::string& bad :
       {wrong_secret, std::string("ferry_xyz"), std::string("ferry_") + admin.substr(6, 12),
        admin.substr(0, admin.size() - 1), std::string("not a token at all"), std::string("eyJhbGciOi.x.y")}) {
    EXPECT_EQ(WhoAmI(suite, bad), grpc::StatusCode::UNAUTHENTICATED) << bad;
    v1::ListRepositoriesResponse out;
    EXPECT_EQ(suite.RepoWatcher()->ListRepositories(SecureSuite::Context(bad).get(), {}, &out).error_code(),
              grpc::StatusCode::UNAUTHENTICATED)
        << bad;
  }
  // A bearer token in the wrong header, or with the wrong scheme, is no credential.
  {
    auto ctx = SecureSuite::Context("");
    ctx->AddMetadata("authorization", "Basic " + admin);
    v1::WhoAmIResponse out;
    EXPECT_EQ(suite.Access()->WhoAmI(ctx.get(), {}, &out).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }

  // The refusals reach the audit log, never with a secret.
  std::vector<v1::Event> denied;
  EXPECT_TRUE(SecureSuite::Eventually([&] {
    denied = suite.Events(v1::AUDIT_ACTION_ACCESS_DENIED);
    return !denied.empty();
  })) << suite.Logs();
  for (const v1::Event& e : denied) {
    const std::string text = e.ShortDebugString();
    EXPECT_FALSE(absl::StrContains(text, admin.substr(19))) << text;
    EXPECT_FALSE(absl::StrContains(text, revoked.substr(19))) << text;
    EXPECT_FALSE(absl::StrContains(text, wrong_secret.substr(19))) << text;
  }
}

// The bootstrap admin token (make up's first credential) can be revoked
// like any other, and a restart with the same --bootstrap-admin-token-file
// does not bring it back. Before #16 there were no tokens to revoke.
TEST(AccessAttacksTest, ARevokedBootstrapTokenStaysRevokedAcrossRestarts) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  const std::string admin = suite.admin_token();
  v1::WhoAmIResponse who;
  ASSERT_EQ(WhoAmI(suite, admin, &who), grpc::StatusCode::OK);
  EXPECT_EQ(who.subject(), "user:admin");
  const std::string second_admin = suite.CreateToken("admin");
  v1::RevokeTokenRequest revoke;
  revoke.set_token_id(who.method().substr(std::string("token:").size()));
  v1::RevokeTokenResponse out;
  grpc::Status s = suite.Access()->RevokeToken(SecureSuite::Context(second_admin).get(), revoke, &out);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(WhoAmI(suite, admin), grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(suite.RestartPlanner()) << suite.Logs();
  EXPECT_EQ(WhoAmI(suite, admin), grpc::StatusCode::UNAUTHENTICATED) << "revived by the restart";
  EXPECT_EQ(WhoAmI(suite, second_admin), grpc::StatusCode::OK);
}

// OIDC: tokens signed with cjose by a key in a JWKS file the policy names.
std::string Base64Url(const std::string& bytes) {
  char* out = nullptr;
  size_t out_len = 0;
  cjose_err err{};
  EXPECT_TRUE(
      cjose_base64url_encode(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &out, &out_len, &err));
  std::string text(out, out_len);
  cjose_get_dealloc()(out);
  return text;
}

class RsaKey {
 public:
  explicit RsaKey(const std::string& kid) : kid_(kid) {
    static const uint8_t kExponent[] = {0x01, 0x00, 0x01};
    cjose_err err{};
    jwk_ = cjose_jwk_create_RSA_random(2048, kExponent, sizeof(kExponent), &err);
    EXPECT_NE(jwk_, nullptr);
    EXPECT_TRUE(cjose_jwk_set_kid(jwk_, kid_.data(), kid_.size(), &err));
  }
  ~RsaKey() { cjose_jwk_release(jwk_); }
  RsaKey(const RsaKey&) = delete;
  RsaKey& operator=(const RsaKey&) = delete;

  nlohmann::json PublicJwk() const {
    cjose_err err{};
    char* text = cjose_jwk_to_json(jwk_, false, &err);
    nlohmann::json value = ParseJson(text).value();
    cjose_get_dealloc()(text);
    return value;
  }

  std::string Sign(const nlohmann::json& claims) const {
    cjose_err err{};
    cjose_header_t* header = cjose_header_new(&err);
    EXPECT_TRUE(cjose_header_set(header, CJOSE_HDR_ALG, "RS256", &err));
    EXPECT_TRUE(cjose_header_set(header, CJOSE_HDR_KID, kid_.c_str(), &err));
    EXPECT_TRUE(cjose_header_set(header, "typ", "JWT", &err));
    const std::string payload = DumpJson(claims).value();
    cjose_jws_t* jws =
        cjose_jws_sign(jwk_, header, reinterpret_cast<const uint8_t*>(payload.data()), payload.size(), &err);
    cjose_header_release(header);
    EXPECT_NE(jws, nullptr);
    if (jws == nullptr) return "";
    const char* compact = nullptr;
    EXPECT_TRUE(cjose_jws_export(jws, &compact, &err));
    std::string token = compact ? compact : "";
    cjose_jws_release(jws);
    return token;
  }

 private:
  cjose_jwk_t* jwk_ = nullptr;
  std::string kid_;
};

constexpr char kIssuer[] = "https://idp.example.com";

// (f) Before #16 there was no authentication to get wrong: a bad JWT was as
// good as none, and every call was served.
TEST(AccessAttacksTest, OidcTokensAreVerifiedAndTheirGroupsBound) {
  SecureSuite suite;
  RsaKey key("k1");
  RsaKey stranger("k1");  // same kid, not in the JWKS
  const std::string jwks = suite.dir() + "/jwks.json";
  {
    std::ofstream out(jwks);
    out << DumpJson(nlohmann::json{{"keys", nlohmann::json::array({key.PublicJwk()})}}).value();
  }
  suite.WritePolicy(absl::StrCat(testing::kBasePolicy, "  - subjects: [\"group:platform\"]\n    role: operator\n",
                                 "oidc:\n  - issuer: ", kIssuer, "\n    audience: ferry\n    jwks_file: ", jwks,
                                 "\n"));
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  const nlohmann::json good = {{"iss", kIssuer},  {"aud", "ferry"},      {"sub", "jane"},
                               {"exp", now + 600}, {"iat", now - 10},     {"groups", {"platform", "other"}}};

  v1::WhoAmIResponse who;
  ASSERT_EQ(WhoAmI(suite, key.Sign(good), &who), grpc::StatusCode::OK) << suite.Logs();
  EXPECT_EQ(who.subject(), "user:jane");
  EXPECT_EQ(who.kind(), v1::PRINCIPAL_KIND_USER);
  EXPECT_EQ(who.method(), absl::StrCat("oidc:", kIssuer));
  EXPECT_EQ(std::vector<std::string>(who.groups().begin(), who.groups().end()),
            (std::vector<std::string>{"platform", "other"}));
  // The group's binding (operator) holds on the other services too...
  EXPECT_EQ(ListApplications(suite, key.Sign(good)), grpc::StatusCode::OK);
  {
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("none");
    v1::RefreshRepositoryResponse out;
    grpc::Status s = suite.RepoWatcher()->RefreshRepository(SecureSuite::Context(key.Sign(good)).get(), req, &out);
    EXPECT_NE(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(s);
  }
  // ... and grants no more than the role.
  {
    v1::CreateEnvironmentRequest req;
    req.mutable_environment()->set_id("jane");
    v1::Environment out;
    grpc::Status s = suite.Planner()->CreateEnvironment(SecureSuite::Context(key.Sign(good)).get(), req, &out);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  }
  // Without the group: authenticated, nothing granted.
  nlohmann::json no_group = good;
  no_group["groups"] = {"other"};
  EXPECT_EQ(WhoAmI(suite, key.Sign(no_group)), grpc::StatusCode::OK);
  EXPECT_EQ(ListApplications(suite, key.Sign(no_group)), grpc::StatusCode::PERMISSION_DENIED);

  nlohmann::json wrong_issuer = good;
  wrong_issuer["iss"] = "https://evil.example.com";
  nlohmann::json wrong_audience = good;
  wrong_audience["aud"] = "not-ferry";
  nlohmann::json expired = good;
  expired["exp"] = now - 3600;
  const std::string alg_none =
      Base64Url(R"({"alg":"none","kid":"k1","typ":"JWT"})") + "." + Base64Url(DumpJson(good).value()) + ".";
  const std::string genuine = key.Sign(good);
  const std::string none_with_signature = alg_none + genuine.substr(genuine.rfind('.') + 1);
  std::string tampered = genuine;
  {
    // The payload of another user, the genuine signature.
    nlohmann::json root = good;
    root["sub"] = "admin";
    size_t dot1 = genuine.find('.'), dot2 = genuine.rfind('.');
    tampered = genuine.substr(0, dot1 + 1) + Base64Url(DumpJson(root).value()) + genuine.substr(dot2);
  }
  struct Bad {
    std::string name, token;
  };
  for (const Bad& b : std::vector<Bad>{{"wrong issuer", key.Sign(wrong_issuer)},
                                       {"wrong audience", key.Sign(wrong_audience)},
                                       {"expired", key.Sign(expired)},
                                       {"alg none", alg_none},
                                       {"alg none with a signature", none_with_signature},
                                       {"signed by another key", stranger.Sign(good)},
                                       {"tampered payload", tampered}}) {
    EXPECT_EQ(WhoAmI(suite, b.token), grpc::StatusCode::UNAUTHENTICATED) << b.name;
    EXPECT_EQ(ListApplications(suite, b.token), grpc::StatusCode::UNAUTHENTICATED) << b.name;
  }

  // Key rotation: the issuer publishes a new key in the JWKS file; tokens
  // signed with it work without a restart.
  RsaKey rotated("k2");
  EXPECT_EQ(WhoAmI(suite, rotated.Sign(good)), grpc::StatusCode::UNAUTHENTICATED) << "not published yet";
  {
    std::ofstream out(jwks + ".new");
    out << DumpJson(nlohmann::json{{"keys", nlohmann::json::array({key.PublicJwk(), rotated.PublicJwk()})}}).value();
  }
  ASSERT_EQ(std::rename((jwks + ".new").c_str(), jwks.c_str()), 0);
  EXPECT_TRUE(SecureSuite::Eventually(
      [&] { return WhoAmI(suite, rotated.Sign(good)) == grpc::StatusCode::OK; }, absl::Seconds(10)))
      << suite.Logs();
  EXPECT_EQ(ListApplications(suite, rotated.Sign(good)), grpc::StatusCode::OK);
}

// (g) A change of the policy file is in force within seconds, without a
// restart, on every service. Before #16 there was no policy: "nobody" was
// served from the start.
TEST(AccessAttacksTest, APolicyChangeTakesEffectWithoutARestart) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start()) << suite.Logs();
  const std::string nobody = suite.CreateToken("nobody");
  const pid_t planner = suite.process("planner").pid();
  auto audit_query = [&] {
    v1::QueryResponse out;
    return suite.Audit()->Query(SecureSuite::Context(nobody).get(), {}, &out).error_code();
  };
  EXPECT_EQ(ListApplications(suite, nobody), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(audit_query(), grpc::StatusCode::PERMISSION_DENIED);

  // On change (polled every 2 s).
  const std::string granted = absl::StrCat(testing::kBasePolicy, "  - subjects: [\"user:nobody\"]\n    role: viewer\n");
  suite.WritePolicy(granted);
  EXPECT_TRUE(SecureSuite::Eventually([&] { return ListApplications(suite, nobody) == grpc::StatusCode::OK; },
                                      absl::Seconds(10)));
  EXPECT_TRUE(SecureSuite::Eventually([&] { return audit_query() == grpc::StatusCode::OK; }, absl::Seconds(10)));

  // A broken file keeps the policy in force.
  suite.WritePolicy("bindings:\n  - subjects: [\"user:nobody\"]\n    role: owner\n");
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(ListApplications(suite, nobody), grpc::StatusCode::OK);

  // Taken away again, this time on SIGHUP: a change the poll cannot see
  // (same file, same size, the old modification time put back) is read only
  // when the service is told.
  suite.WritePolicy(granted);
  absl::SleepFor(absl::Seconds(3));  // the poll has seen this file
  ASSERT_EQ(ListApplications(suite, nobody), grpc::StatusCode::OK);
  struct stat before {};
  ASSERT_EQ(::stat(suite.policy_path().c_str(), &before), 0);
  std::string revoked = granted;
  revoked.replace(revoked.find("user:nobody"), 11, "user:nobodx");
  ASSERT_EQ(revoked.size(), granted.size());
  {
    std::fstream f(suite.policy_path(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << revoked;
  }
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, suite.policy_path().c_str(), times, 0), 0);
  absl::SleepFor(absl::Seconds(3));
  EXPECT_EQ(ListApplications(suite, nobody), grpc::StatusCode::OK) << "the poll saw no change";
  ASSERT_EQ(::kill(planner, SIGHUP), 0);
  EXPECT_TRUE(SecureSuite::Eventually(
      [&] { return ListApplications(suite, nobody) == grpc::StatusCode::PERMISSION_DENIED; }, absl::Seconds(2)));
  EXPECT_EQ(suite.process("planner").pid(), planner);
  EXPECT_EQ(WhoAmI(suite, suite.admin_token()), grpc::StatusCode::OK) << "the planner is still serving";
}

}  // namespace
}  // namespace ferry
