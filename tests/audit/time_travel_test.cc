// Time travel and DORA metrics against a real PostgreSQL: a scripted
// deployment history is appended through the audit log exactly as the
// repo-watcher and the deployer emit it, and every answer is checked against
// figures worked out by hand (in the comments beside them).

#include "services/audit/time_travel.h"

#include <gtest/gtest.h>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "audit_migrations.h"
#include "common/postgres/migrator.h"
#include "services/audit/audit_log.h"
#include "services/audit/checkpoint_signer.h"
#include "services/audit/postgres_event_store.h"
#include "services/audit/postgres_history_store.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

const absl::Time kT0 = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
const std::string kShaA(40, 'a');
const std::string kShaB(40, 'b');
const std::string kShaC(40, 'c');

google::protobuf::Timestamp At(absl::Duration since_t0) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(kT0 + since_t0));
}

class TimeTravelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pool_ = db_.Pool(4);
    ASSERT_TRUE(postgres::Migrate(*pool_, AuditMigrations()).ok());
    key_dir_ = testing::MakeTempDir("ferry-time-travel-test");
    bool generated = false;
    auto signer = CheckpointSigner::LoadOrGenerate(key_dir_ + "/key.pem", &generated);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::move(*signer);
    store_ = std::make_unique<PostgresEventStore>(*pool_);
    appender_ = std::make_unique<Appender>(*store_, clock_, nullptr);
    log_ = std::make_unique<AuditLog>(*store_, *appender_, *signer_, clock_, nullptr);
    history_store_ = std::make_unique<PostgresHistoryStore>(*pool_);
    history_ = std::make_unique<TimeTravel>(*history_store_, clock_);
    clock_.Set(kT0 + absl::Hours(100));
    Script();
  }

  void Append(const std::string& service, const v1::Event& e) {
    absl::StatusOr<AppendResult> r = log_->Append(service, e);
    ASSERT_TRUE(r.ok()) << r.status();
  }

  // A REVISION_DETECTED as the repo-watcher emits it; commit_time_unix is
  // absent when `commit` is nullopt (an event from before that detail).
  void Revision(const std::string& sha, std::optional<absl::Duration> commit, absl::Duration seen) {
    v1::Event e;
    e.set_action(v1::AUDIT_ACTION_REVISION_DETECTED);
    e.mutable_actor()->set_id("ferry");
    e.mutable_actor()->set_kind(v1::ACTOR_KIND_SYSTEM);
    e.mutable_subject()->set_repository_id("config");
    e.mutable_subject()->set_ref("refs/heads/main");
    e.mutable_subject()->set_commit_sha(sha);
    e.set_message("new revision " + sha);
    e.set_idempotency_key("revision/" + sha);
    *e.mutable_time() = At(seen);
    if (commit) {
      (*e.mutable_details()->mutable_fields())["commit_time_unix"].set_number_value(
          static_cast<double>(absl::ToUnixSeconds(kT0 + *commit)));
    }
    Append("repo-watcher", e);
  }

  // A DEPLOYMENT_* event as the deployer's DeploymentEvent builds it.
  void Deployment(v1::AuditAction action, const std::string& id, const std::string& app, const std::string& env,
                  const std::string& kind, const std::string& sha, const std::string& actor, absl::Duration when) {
    v1::Event e;
    e.set_action(action);
    e.mutable_actor()->set_id(actor);
    e.mutable_actor()->set_kind(actor == "ferry" ? v1::ACTOR_KIND_SYSTEM : v1::ACTOR_KIND_USER);
    v1::Subject* s = e.mutable_subject();
    s->set_repository_id("config");
    s->set_application_id(app);
    s->set_environment_id(env);
    s->set_plan_id(kind == "DEPLOYMENT_KIND_ROLLOUT" ? "plan-" + id : "");
    s->set_deployment_id(id);
    s->set_commit_sha(sha);
    s->set_ref("refs/heads/main");
    e.set_message(absl::StrCat(v1::AuditAction_Name(action), " ", id));
    e.set_idempotency_key(absl::StrCat("deployment/", id, "/", v1::AuditAction_Name(action)));
    *e.mutable_time() = At(when);
    auto& f = *e.mutable_details()->mutable_fields();
    f["kind"].set_string_value(kind);
    f["manifests_digest"].set_string_value("sha256:" + sha.substr(0, 8));
    Append("deployer", e);
  }

  void Script() {
    using absl::Hours;
    using absl::Minutes;
    const auto ok = v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED;
    const auto failed = v1::AUDIT_ACTION_DEPLOYMENT_FAILED;
    const std::string rollout = "DEPLOYMENT_KIND_ROLLOUT";
    // Commits: A at 0h, B at 10h, C seen at 20h without a recorded commit time.
    Revision(kShaA, Hours(0), Minutes(10));
    Revision(kShaB, Hours(10), Hours(10) + Minutes(5));
    Revision(kShaC, std::nullopt, Hours(20));
    Deployment(v1::AUDIT_ACTION_DEPLOYMENT_STARTED, "d1", "web", "prod", rollout, kShaA, "alice", Hours(1));
    Deployment(ok, "s1", "web", "staging", rollout, kShaA, "alice", Hours(1) + Minutes(30));
    Deployment(ok, "d1", "web", "prod", rollout, kShaA, "alice", Hours(2));
    Deployment(ok, "p1", "api", "prod", "DEPLOYMENT_KIND_SELF_HEAL", kShaA, "ferry", Hours(5));
    Deployment(failed, "s2", "web", "staging", rollout, kShaB, "bob", Hours(11));
    Deployment(ok, "d2", "web", "prod", rollout, kShaB, "bob", Hours(12));
    Deployment(ok, "s3", "web", "staging", "DEPLOYMENT_KIND_ROLLBACK", kShaA, "dave", Hours(15));
    Deployment(failed, "d3", "web", "prod", rollout, kShaC, "carol", Hours(22));
    Deployment(ok, "d4", "web", "prod", "DEPLOYMENT_KIND_AUTO_ROLLBACK", kShaB, "ferry", Hours(22) + Minutes(30));
    Deployment(v1::AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK, "d3", "web", "prod", rollout, kShaC, "carol",
               Hours(22) + Minutes(31));
    Deployment(ok, "d5", "web", "prod", rollout, kShaC, "carol", Hours(30));
    Deployment(failed, "s4", "web", "staging", rollout, kShaC, "carol", Hours(40));
  }

  const v1::DoraFigures* Target(const v1::GetDoraMetricsResponse& m, const std::string& app, const std::string& env) {
    for (const v1::DoraFigures& f : m.targets()) {
      if (f.application_id() == app && f.environment_id() == env) return &f;
    }
    return nullptr;
  }

  testing::TestDatabase db_;
  std::unique_ptr<postgres::ConnectionPool> pool_;
  std::string key_dir_;
  testing::FakeClock clock_;
  std::unique_ptr<CheckpointSigner> signer_;
  std::unique_ptr<PostgresEventStore> store_;
  std::unique_ptr<Appender> appender_;
  std::unique_ptr<AuditLog> log_;
  std::unique_ptr<PostgresHistoryStore> history_store_;
  std::unique_ptr<TimeTravel> history_;
};

TEST_F(TimeTravelTest, DoraFiguresMatchTheHandComputedOnes) {
  v1::GetDoraMetricsRequest req;
  *req.mutable_start_time() = At(absl::ZeroDuration());
  *req.mutable_end_time() = At(absl::Hours(48));  // two days
  absl::StatusOr<v1::GetDoraMetricsResponse> m = history_->GetDoraMetrics(req);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->targets_size(), 3);

  // web/prod: changes d1 ok, d2 ok, d3 failed (rolled back), d5 ok; d4 is
  // Ferry's automatic rollback, no change. Lead times: d1 2h-0h, d2 12h-10h,
  // d5 30h-20h (C's commit time unknown: when it was seen) = 7200, 7200,
  // 36000 s. d3 failed at 22h, restored by d4 at 22h30: 1800 s.
  const v1::DoraFigures* prod = Target(*m, "web", "prod");
  ASSERT_NE(prod, nullptr);
  EXPECT_EQ(prod->deployments(), 4);
  EXPECT_EQ(prod->successful_deployments(), 3);
  EXPECT_DOUBLE_EQ(prod->deployments_per_day(), 1.5);
  EXPECT_EQ(prod->failed_deployments(), 1);
  EXPECT_DOUBLE_EQ(prod->change_failure_rate(), 0.25);
  EXPECT_EQ(prod->lead_time_samples(), 3);
  EXPECT_DOUBLE_EQ(prod->lead_time_median_seconds(), 7200);
  EXPECT_DOUBLE_EQ(prod->lead_time_mean_seconds(), 16800);
  EXPECT_EQ(prod->restored_failures(), 1);
  EXPECT_EQ(prod->unrestored_failures(), 0);
  EXPECT_DOUBLE_EQ(prod->time_to_restore_median_seconds(), 1800);
  EXPECT_DOUBLE_EQ(prod->time_to_restore_mean_seconds(), 1800);

  // web/staging: s1 ok (lead 1h30 = 5400 s), s2 failed at 11h, s3 (a manual
  // rollback: a change, but no lead time) ok at 15h restores it (4h = 14400
  // s), s4 failed at 40h and nothing healthy since.
  const v1::DoraFigures* staging = Target(*m, "web", "staging");
  ASSERT_NE(staging, nullptr);
  EXPECT_EQ(staging->deployments(), 4);
  EXPECT_EQ(staging->successful_deployments(), 2);
  EXPECT_DOUBLE_EQ(staging->deployments_per_day(), 1.0);
  EXPECT_EQ(staging->failed_deployments(), 2);
  EXPECT_DOUBLE_EQ(staging->change_failure_rate(), 0.5);
  EXPECT_EQ(staging->lead_time_samples(), 1);
  EXPECT_DOUBLE_EQ(staging->lead_time_median_seconds(), 5400);
  EXPECT_EQ(staging->restored_failures(), 1);
  EXPECT_EQ(staging->unrestored_failures(), 1);
  EXPECT_DOUBLE_EQ(staging->time_to_restore_median_seconds(), 14400);

  // api/prod: one self-heal, which is no change.
  const v1::DoraFigures* api = Target(*m, "api", "prod");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->deployments(), 0);
  EXPECT_DOUBLE_EQ(api->change_failure_rate(), 0);

  // All: 8 changes, 5 ok, 3 failed; lead times 5400, 7200, 7200, 36000
  // (median 7200, mean 13950); restores 1800 and 14400 (median and mean 8100).
  const v1::DoraFigures& all = m->total();
  EXPECT_EQ(all.deployments(), 8);
  EXPECT_EQ(all.successful_deployments(), 5);
  EXPECT_DOUBLE_EQ(all.deployments_per_day(), 2.5);
  EXPECT_EQ(all.failed_deployments(), 3);
  EXPECT_DOUBLE_EQ(all.change_failure_rate(), 0.375);
  EXPECT_EQ(all.lead_time_samples(), 4);
  EXPECT_DOUBLE_EQ(all.lead_time_median_seconds(), 7200);
  EXPECT_DOUBLE_EQ(all.lead_time_mean_seconds(), 13950);
  EXPECT_EQ(all.restored_failures(), 2);
  EXPECT_EQ(all.unrestored_failures(), 1);
  EXPECT_DOUBLE_EQ(all.time_to_restore_median_seconds(), 8100);
  EXPECT_DOUBLE_EQ(all.time_to_restore_mean_seconds(), 8100);
}

TEST_F(TimeTravelTest, DoraOverASubRangeAndOneTarget) {
  // [20h, 48h) of web/prod: d3 failed, d4 (no change), d5 ok: 2 changes, 1
  // failed, 1 success in 28 hours; d5's lead time 10h.
  v1::GetDoraMetricsRequest req;
  *req.mutable_start_time() = At(absl::Hours(20));
  *req.mutable_end_time() = At(absl::Hours(48));
  req.set_application_id("web");
  req.set_environment_id("prod");
  absl::StatusOr<v1::GetDoraMetricsResponse> m = history_->GetDoraMetrics(req);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->targets_size(), 1);
  const v1::DoraFigures& f = m->total();
  EXPECT_EQ(f.deployments(), 2);
  EXPECT_EQ(f.failed_deployments(), 1);
  EXPECT_DOUBLE_EQ(f.change_failure_rate(), 0.5);
  EXPECT_DOUBLE_EQ(f.deployments_per_day(), 1.0 / (28.0 / 24.0));
  EXPECT_DOUBLE_EQ(f.lead_time_median_seconds(), 36000);
  EXPECT_DOUBLE_EQ(f.time_to_restore_median_seconds(), 1800);
}

TEST_F(TimeTravelTest, DoraRefusesAMissingOrInvertedRange) {
  v1::GetDoraMetricsRequest req;
  absl::StatusOr<v1::GetDoraMetricsResponse> m = history_->GetDoraMetrics(req);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("start_time"), std::string::npos);
  *req.mutable_start_time() = At(absl::Hours(5));
  *req.mutable_end_time() = At(absl::Hours(4));
  m = history_->GetDoraMetrics(req);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("end_time"), std::string::npos);
}

TEST_F(TimeTravelTest, StateAtATimeIsTheLastHealthyDeploymentOfEachPair) {
  v1::GetDeployedStateRequest req;
  *req.mutable_time() = At(absl::Hours(2));  // d1's success is at exactly 2h: included
  absl::StatusOr<v1::GetDeployedStateResponse> s = history_->GetDeployedState(req);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->deployed_size(), 2);
  EXPECT_EQ(s->deployed(0).environment_id(), "prod");  // web/prod before web/staging
  EXPECT_EQ(s->deployed(0).deployment_id(), "d1");
  EXPECT_EQ(s->deployed(0).commit_sha(), kShaA);
  EXPECT_EQ(s->deployed(0).actor().id(), "alice");
  EXPECT_EQ(s->deployed(0).kind(), "DEPLOYMENT_KIND_ROLLOUT");
  EXPECT_EQ(s->deployed(0).manifests_digest(), "sha256:aaaaaaaa");
  EXPECT_EQ(s->deployed(1).deployment_id(), "s1");

  // At 23h: web/prod runs B again, by Ferry's automatic rollback d4 (d3
  // failed); staging A by dave's rollback; api the self-heal.
  *req.mutable_time() = At(absl::Hours(23));
  s = history_->GetDeployedState(req);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->deployed_size(), 3);
  EXPECT_EQ(s->deployed(0).application_id(), "api");
  EXPECT_EQ(s->deployed(0).deployment_id(), "p1");
  EXPECT_EQ(s->deployed(1).deployment_id(), "d4");
  EXPECT_EQ(s->deployed(1).commit_sha(), kShaB);
  EXPECT_EQ(s->deployed(1).actor().id(), "ferry");
  EXPECT_EQ(s->deployed(2).deployment_id(), "s3");
  EXPECT_EQ(s->deployed(2).actor().id(), "dave");

  // Before anything: nothing. One application only: its pairs.
  *req.mutable_time() = At(absl::Minutes(1));
  s = history_->GetDeployedState(req);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->deployed_size(), 0);
  req.clear_time();  // now (100h): d5 in prod
  req.set_application_id("web");
  req.set_environment_id("prod");
  s = history_->GetDeployedState(req);
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->deployed_size(), 1);
  EXPECT_EQ(s->deployed(0).deployment_id(), "d5");
}

TEST_F(TimeTravelTest, ChangesBetweenTwoTimesArePagedWithTheTargetsThatMoved) {
  v1::ListChangesRequest req;
  *req.mutable_start_time() = At(absl::Hours(11));
  *req.mutable_end_time() = At(absl::Hours(23));
  req.set_page_size(4);
  absl::StatusOr<v1::ListChangesResponse> page = history_->ListChanges(req);
  ASSERT_TRUE(page.ok()) << page.status();
  std::vector<std::string> seen;
  for (const auto& c : page->changes()) {
    seen.push_back(absl::StrCat(c.deployment().deployment_id(), ":", v1::AuditAction_Name(c.outcome())));
  }
  ASSERT_FALSE(page->next_page_token().empty());
  // web/prod moved from d1 to d4, web/staging from s1 to s3; api/prod (p1
  // throughout) did not move.
  ASSERT_EQ(page->targets_size(), 2);
  EXPECT_EQ(page->targets(0).environment_id(), "prod");
  EXPECT_EQ(page->targets(0).before().deployment_id(), "d1");
  EXPECT_EQ(page->targets(0).after().deployment_id(), "d4");
  EXPECT_EQ(page->targets(1).before().deployment_id(), "s1");
  EXPECT_EQ(page->targets(1).after().deployment_id(), "s3");

  req.set_page_token(page->next_page_token());
  page = history_->ListChanges(req);
  ASSERT_TRUE(page.ok()) << page.status();
  for (const auto& c : page->changes()) {
    seen.push_back(absl::StrCat(c.deployment().deployment_id(), ":", v1::AuditAction_Name(c.outcome())));
  }
  EXPECT_TRUE(page->next_page_token().empty());
  EXPECT_EQ(page->targets_size(), 0);
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "s2:AUDIT_ACTION_DEPLOYMENT_FAILED", "d2:AUDIT_ACTION_DEPLOYMENT_SUCCEEDED",
                      "s3:AUDIT_ACTION_DEPLOYMENT_SUCCEEDED", "d3:AUDIT_ACTION_DEPLOYMENT_FAILED",
                      "d4:AUDIT_ACTION_DEPLOYMENT_SUCCEEDED", "d3:AUDIT_ACTION_DEPLOYMENT_ROLLED_BACK"}));

  req.set_page_token("garbage");
  page = history_->ListChanges(req);
  EXPECT_EQ(page.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(page.status().message().find("page_token"), std::string::npos);
}

}  // namespace
}  // namespace ferry::audit
