// The signature policy on every path, through the four real binaries: a
// commit the repository's policy rejected is never planned, previewed,
// reconciled or rolled back to when a person names it, and each refusal
// reaches the audit log.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/repo-watcher/signing_keys.h"
#include "tests/support/plain_suite.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

using testing::ServiceProcess;

std::string Greeting(const std::string& text) {
  return absl::StrCat("apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: greeting\nspec:\n",
                      "  path: web/greeting.txt\n  content: \"", text, "\\n\"\n");
}

class SignaturePolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-sigpolicy");
    root_ = dir_ + "/env-local";
    std::filesystem::create_directories(root_);
    repo_ = std::make_unique<testing::GitTestRepo>(dir_ + "/git");
    alice_ = testing::SshKey::Generate(dir_ + "/ssh-alice", "alice@ferry.example");
  }

  void StartServices() {
    ASSERT_TRUE(testing::StartPlainServices(db_.url(), dir_, {}, &services_));
    rw_ = v1::RepoWatcher::NewStub(testing::PlainChannel(*services_.repo_watcher));
    pl_ = v1::Planner::NewStub(testing::PlainChannel(*services_.planner));
    au_ = v1::Audit::NewStub(testing::PlainChannel(*services_.audit));
  }

  v1::RepositoryStatus Refresh() {
    grpc::ClientContext ctx;
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("config");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    grpc::Status s = rw_->RefreshRepository(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out.status();
  }

  grpc::Status Apply(const std::string& commit) {
    grpc::ClientContext ctx;
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("config");
    req.mutable_source()->set_ref("main");
    req.set_commit(commit);
    v1::ApplyDeclarativeConfigResponse out;
    return pl_->ApplyDeclarativeConfig(&ctx, req, &out);
  }

  grpc::Status PlanRevision(const std::string& sha, v1::PlanTrigger trigger) {
    grpc::ClientContext ctx;
    v1::PlanRevisionRequest req;
    req.set_application_id("web");
    req.set_environment_id("local");
    req.mutable_revision()->set_sha(sha);
    req.set_trigger(trigger);
    req.mutable_actor()->set_kind(v1::ACTOR_KIND_USER);
    req.mutable_actor()->set_id("mallory");
    req.set_approve(true);
    v1::PlanRevisionResponse out;
    return pl_->PlanRevision(&ctx, req, &out);
  }

  grpc::Status Preview(const std::string& sha) {
    grpc::ClientContext ctx;
    v1::PreviewPlanRequest req;
    req.set_application_id("web");
    req.set_environment_id("local");
    req.mutable_revision()->set_sha(sha);
    v1::PreviewPlanResponse out;
    return pl_->PreviewPlan(&ctx, req, &out);
  }

  std::vector<v1::Plan> Plans() {
    grpc::ClientContext ctx;
    v1::ListPlansRequest req;
    req.set_application_id("web");
    req.set_view(v1::PLAN_VIEW_BASIC);
    req.set_page_size(1000);
    v1::ListPlansResponse out;
    EXPECT_TRUE(pl_->ListPlans(&ctx, req, &out).ok());
    return {out.plans().begin(), out.plans().end()};
  }

  // The REVISION_REFUSED events the audit log holds.
  std::vector<v1::Event> Refusals() {
    grpc::ClientContext ctx;
    v1::QueryRequest req;
    req.mutable_filter()->add_actions(v1::AUDIT_ACTION_REVISION_REFUSED);
    req.set_page_size(1000);
    v1::QueryResponse out;
    if (!au_->Query(&ctx, req, &out).ok()) return {};
    return {out.events().begin(), out.events().end()};
  }

  std::string ReadGreeting() {
    std::ifstream in(root_ + "/web/greeting.txt", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

  testing::TestDatabase db_;
  std::string dir_, root_;
  std::unique_ptr<testing::GitTestRepo> repo_;
  testing::SshKey alice_;
  testing::PlainServices services_;
  std::unique_ptr<v1::RepoWatcher::Stub> rw_;
  std::unique_ptr<v1::Planner::Stub> pl_;
  std::unique_ptr<v1::Audit::Stub> au_;
};

TEST_F(SignaturePolicyTest, ARejectedCommitIsRefusedOnEveryPathAPersonCanNameIt) {
  const std::string yaml = absl::StrCat("environments:\n  local:\n    host: {rootDir: ", root_,
                                        "}\n    approval: auto\napplications:\n  web:\n    path: apps/web\n",
                                        "    environments: [local]\n    sync: {automated: true}\n",
                                        "    healthTimeout: 10s\n");
  std::string good = repo_->Commit({{"ferry.yaml", yaml}, {"apps/web/deploy.yaml", Greeting("hello")}}, "signed",
                                   alice_.CommitArgs(), alice_.Env());
  repo_->Push("main");
  StartServices();
  {
    grpc::ClientContext ctx;
    v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("config");
    req.mutable_repository()->set_url(repo_->remote_path());
    req.mutable_repository()->mutable_poll_interval()->set_seconds(1);
    req.mutable_repository()->mutable_signature_policy()->set_mode(v1::SIGNATURE_MODE_HEAD);
    req.mutable_repository()->mutable_signature_policy()->add_ssh_allowed_signers(alice_.allowed_signer);
    v1::Repository out;
    grpc::Status s = rw_->CreateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  ASSERT_EQ(Refresh().refs(0).accepted_sha(), good);
  grpc::Status applied = Apply("");
  ASSERT_TRUE(applied.ok()) << applied.error_message() << services_.planner->Log();
  absl::Time deadline = absl::Now() + absl::Minutes(2);
  while (ReadGreeting() != "hello\n" && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(200));
  ASSERT_EQ(ReadGreeting(), "hello\n") << services_.deployer->Log();

  // An unsigned commit: the repo-watcher rejects it on the automatic path.
  std::string evil = repo_->Commit({{"apps/web/deploy.yaml", Greeting("pwned")}}, "unsigned");
  repo_->Push("main");
  v1::RepositoryStatus status = Refresh();
  ASSERT_EQ(status.refs(0).sha(), evil);
  ASSERT_EQ(status.refs(0).accepted_sha(), good);
  const size_t plans = Plans().size();

  // ... and the planner refuses it when a person names it.
  for (grpc::Status refused : {PlanRevision(evil, v1::PLAN_TRIGGER_EXPLICIT_REVISION), Preview(evil), Apply(evil)}) {
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << refused.error_message();
    EXPECT_NE(refused.error_message().find("revision " + evil +
                                           " of repository config is not accepted by its signature policy"),
              std::string::npos)
        << refused.error_message();
  }
  // A rollback to it: it was never deployed here (checked first).
  grpc::Status rollback = PlanRevision(evil, v1::PLAN_TRIGGER_ROLLBACK);
  EXPECT_EQ(rollback.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << rollback.error_message();
  EXPECT_NE(rollback.error_message().find("never deployed"), std::string::npos) << rollback.error_message();
  EXPECT_EQ(Plans().size(), plans) << "nothing planned";
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(ReadGreeting(), "hello\n");

  deadline = absl::Now() + absl::Seconds(30);
  while (Refusals().size() < 4 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(200));
  std::vector<v1::Event> events = Refusals();
  ASSERT_EQ(events.size(), 4u);
  for (const v1::Event& e : events) {
    EXPECT_EQ(e.subject().commit_sha(), evil);
    EXPECT_EQ(e.subject().repository_id(), "config");
  }
}

}  // namespace
}  // namespace ferry
