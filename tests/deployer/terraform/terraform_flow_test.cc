// The Terraform target end to end with a real terraform (or tofu) and the
// test PostgreSQL as the pg backend, over the path the services take: the
// planner's render (RenderTerraformStack), the environment's variables
// (AddTerraformVariables), the deployer's ObserveLiveState (the dry run is
// `terraform plan`), the planner's diff and pinning of the plan digest, and
// the deployment runner applying the approved Stack through the TargetRouter
// and the TerraformTargetFactory, with its steps and audit events. Plan,
// approve, apply, a no-op re-plan, drift after an out-of-band `terraform
// apply`, a stale plan refused, a failed `terraform plan` failing the Ferry
// plan, and secrets never in plans, steps or audit events.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/live_state_observer.h"
#include "services/deployer/target_router.h"
#include "services/deployer/terraform/terraform_target.h"
#include "services/planner/differ.h"
#include "services/planner/render_failure.h"
#include "services/planner/terraform_plans.h"
#include "tests/deployer/fake_deployment_store.h"
#include "tests/deployer/flow_util.h"
#include "tests/deployer/test_util.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::FakeDeploymentStore;

constexpr char kSecret[] = "tf-flow-secret-7c41a9";

constexpr char kMain[] = R"(variable "greeting" {
  type = string
}
variable "size" {
  type = string
}
variable "token" {
  type      = string
  sensitive = true
}
resource "terraform_data" "hello" {
  input = var.greeting
}
resource "terraform_data" "db" {
  input = var.size
}
resource "terraform_data" "secret" {
  input = var.token
}
)";

std::string WithSslDisabled(const std::string& url) {
  return url + (url.find('?') == std::string::npos ? "?sslmode=disable" : "&sslmode=disable");
}

// The application folder "apps/infra" at one revision: main.tf with the
// greeting as its default-less variable set by the environment.
std::vector<planner::TreeEntry> Folder(const std::string& main_tf) {
  std::vector<planner::TreeEntry> out;
  planner::TreeEntry e;
  e.path = "apps/infra/main.tf";
  e.type = v1::CONTENT_ENTRY_TYPE_FILE;
  e.data = main_tf;
  out.push_back(e);
  return out;
}

struct Planned {
  std::vector<v1::PlanAction> actions;
  v1::Manifest pinned;  // the Stack with spec.planDigest, as the Ferry plan carries it
  absl::Status failure;  // the plan maker's: a failed terraform plan fails the Ferry plan
};

class TerraformFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("terraform-flow");
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
    fs::create_directories(dir_ + "/scratch");
    ASSERT_EQ(::chmod((dir_ + "/scratch").c_str(), 0711), 0);
    setenv("FERRY_SECRET_TF_FLOW_TOKEN", kSecret, 1);
    secrets::SecretResolverOptions so;
    so.key = *ferry::secrets::SealedBoxKey::Generate();
    ferry::secrets::SecretSourceOptions sources;
    sources.service = "deployer";
    sources.env_prefix = "FERRY_SECRET_";
    so.sources = *ferry::secrets::SecretSources::Create(sources);
    resolver_ = std::make_unique<secrets::SecretResolver>(std::move(so));
    plans_ = std::make_unique<terraform::DirectoryPlanStore>(dir_ + "/plans");

    const char* env = std::getenv("FERRY_TERRAFORM_BIN");
    absl::StatusOr<std::string> bin = terraform::FindTerraformBinary(env ? env : "", FERRY_TEST_TOOLS_DIR);
    ASSERT_TRUE(bin.ok()) << bin.status();
    binary_ = *bin;
    terraform::TerraformTargetOptions o;
    o.base.binary = binary_;
    o.base.scratch_root = dir_ + "/scratch";
    o.base.pg_conn_str = WithSslDisabled(db_.url());
    o.base.timeout = absl::Minutes(3);
    o.plans = plans_.get();
    o.secrets = resolver_.get();
    o.clock = &clock_;
    factory_ = std::make_unique<terraform::TerraformTargetFactory>(o, host::WorkloadPolicy(testing::WorkloadsAsTheTestsUid()));
    router_ = std::make_unique<TargetRouter>(nullptr, nullptr, nullptr, factory_.get());

    // The environment "dev" as ferry.yaml's `terraform:` makes it.
    target_.set_kind(v1::TARGET_KIND_TERRAFORM);
    v1::TerraformTargetConfig* t = target_.mutable_terraform();
    t->set_state(v1::TERRAFORM_STATE_PG);
    (*t->mutable_variables())["greeting"] = "hello";
    (*t->mutable_variables())["size"] = "env-wide";
    (*t->mutable_applications())["infra"].mutable_variables()->insert({"size", "small"});
    (*t->mutable_secret_variables())["token"].set_env("FERRY_SECRET_TF_FLOW_TOKEN");
  }
  void TearDown() override {
    unsetenv("FERRY_SECRET_TF_FLOW_TOKEN");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // What the planner does for a terraform application: render the folder,
  // add the environment's variables, ObserveLiveState with the desired
  // Stack (the deployer's dry run is terraform plan), fail the Ferry plan
  // when terraform plan failed, diff, pin the plan's digest.
  Planned PlanFor(const std::string& main_tf) {
    Planned out;
    absl::StatusOr<v1::Manifest> m = planner::RenderTerraformStack("infra", "apps/infra", Folder(main_tf), {}, json());
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return out;
    std::vector<v1::Manifest> manifests{*m};
    planner::AddTerraformVariables(manifests, "infra", target_);
    LiveStateObserver observer(&store_, router_.get(), &clock_);
    v1::ObserveLiveStateRequest req;
    req.set_application_id("infra");
    req.set_environment_id("dev");
    *req.mutable_target() = target_;
    *req.add_desired() = manifests[0];
    absl::StatusOr<v1::ObserveLiveStateResponse> live = observer.ObserveLiveState(req, 4 << 20);
    EXPECT_TRUE(live.ok()) << live.status();
    if (!live.ok()) return out;
    out.failure = planner::TerraformDryRunFailure(manifests, live->state());
    if (!out.failure.ok()) return out;
    std::vector<v1::LiveObject> objects(live->state().objects().begin(), live->state().objects().end());
    out.actions = planner::DiffObjects(manifests, objects, planner::DiffOptions{});
    planner::PinTerraformPlans(manifests, live->state());
    out.pinned = manifests[0];
    return out;
  }

  static std::string DigestOf(const v1::Manifest& m) {
    absl::StatusOr<json> doc = ParseJson(m.json());
    if (!doc.ok()) return "";
    return (*doc)["spec"].value("planDigest", std::string());
  }

  v1::Plan Spec(const std::string& id, char sha, const v1::Manifest& m) {
    return testing::FlowPlan(id, "infra", sha, m, target_, 300);
  }

  // Approved: the runner deploys the plan as the deployer does.
  v1::Deployment Deploy(const v1::Plan& spec) {
    return testing::RunApprovedFlowPlan(spec, &store_, router_.get(), &notifier_, &metrics_, &clock_);
  }

  // The audit events of deployment `id`'s apply steps: plan digest -> result.
  std::map<std::string, std::string> AuditedPlanDigests(const std::string& id) {
    std::map<std::string, std::string> out;
    for (const v1::Event& e : store_.events()) {
      EXPECT_FALSE(absl::StrContains(e.DebugString(), kSecret)) << e.DebugString();
      if (e.action() != v1::AUDIT_ACTION_DEPLOYMENT_STEP || e.subject().deployment_id() != id) continue;
      auto f = e.details().fields().find("plan_digest");
      if (f != e.details().fields().end()) out[f->second.string_value()] = e.details().fields().at("result").string_value();
    }
    return out;
  }

  // An out-of-band change: someone runs terraform by hand against the same
  // state (schema ferry_tf_dev), with another greeting.
  void TerraformApplyByHand(const std::string& greeting) {
    std::string work = dir_ + "/by-hand";
    fs::create_directories(work);
    std::ofstream(work + "/main.tf") << kMain << "terraform {\n  backend \"pg\" {}\n}\n";
    std::string script = absl::StrCat(
        "cd '", work, "' && export PG_CONN_STR='", WithSslDisabled(db_.url()),
        "' PG_SCHEMA_NAME=ferry_tf_dev TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "
        "TF_VAR_greeting='", greeting, "' TF_VAR_size=small TF_VAR_token=x HOME='", work, "' && '", binary_,
        "' init -no-color >/dev/null && '", binary_, "' apply -auto-approve -no-color -lock-timeout=60s >/dev/null");
    ASSERT_EQ(std::system(script.c_str()), 0) << "terraform by hand failed";
  }

  ferry::testing::TestDatabase db_;
  std::string dir_, binary_;
  v1::DeployTarget target_;
  std::unique_ptr<secrets::SecretResolver> resolver_;
  std::unique_ptr<terraform::DirectoryPlanStore> plans_;
  ferry::testing::FakeClock clock_;
  std::unique_ptr<terraform::TerraformTargetFactory> factory_;
  std::unique_ptr<TargetRouter> router_;
  FakeDeploymentStore store_;
  DeploymentNotifier notifier_;
  prometheus::Registry registry_;
  DeployerMetrics metrics_{registry_};
};

TEST_F(TerraformFlowTest, PlanApproveApplyNoopReplanDriftAndAStalePlanRefused) {
  // Plan: the Terraform plan is the Ferry plan's diff, with the
  // environment's variables (the application's own over the environment's)
  // and the secret one masked; nothing applied yet.
  Planned p1 = PlanFor(kMain);
  ASSERT_TRUE(p1.failure.ok()) << p1.failure;
  ASSERT_EQ(p1.actions.size(), 1u);
  EXPECT_NE(p1.actions[0].action(), v1::OBJECT_ACTION_NOOP);
  const std::string& diff = p1.actions[0].unified_diff();
  EXPECT_TRUE(absl::StrContains(diff, "terraform_data.hello")) << diff;
  EXPECT_TRUE(absl::StrContains(diff, "small")) << "the application's variable over the environment's: " << diff;
  EXPECT_FALSE(absl::StrContains(diff, "env-wide")) << diff;
  EXPECT_FALSE(absl::StrContains(diff, kSecret)) << diff;
  EXPECT_FALSE(absl::StrContains(p1.pinned.json(), kSecret));
  EXPECT_TRUE(absl::StrContains(p1.pinned.json(), "FERRY_SECRET_TF_FLOW_TOKEN")) << "the reference, not the value";
  const std::string d1 = DigestOf(p1.pinned);
  ASSERT_TRUE(absl::StartsWith(d1, "sha256:")) << p1.pinned.json();

  // Approve and apply: exactly that plan, its digest in the step and its
  // audit event.
  v1::Deployment dep1 = Deploy(Spec("p1", '1', p1.pinned));
  ASSERT_EQ(dep1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << dep1.message();
  std::map<std::string, std::string> audited = AuditedPlanDigests("dep-p1");
  ASSERT_EQ(audited.count(d1), 1u) << "the applied plan's digest is not in the audit trail";
  EXPECT_EQ(audited[d1], "STEP_RESULT_SUCCEEDED");
  absl::StatusOr<v1::Deployment> full = store_.Get("dep-p1", true);
  ASSERT_TRUE(full.ok());
  bool step_names_plan = false;
  for (const v1::DeploymentStep& s : full->steps()) {
    EXPECT_FALSE(absl::StrContains(s.message(), kSecret));
    if (s.kind() == v1::STEP_KIND_APPLY && absl::StrContains(s.message(), d1)) step_names_plan = true;
  }
  EXPECT_TRUE(step_names_plan);

  // Re-plan of the same configuration: nothing to change, no plan pinned.
  Planned again = PlanFor(kMain);
  ASSERT_TRUE(again.failure.ok()) << again.failure;
  ASSERT_EQ(again.actions.size(), 1u);
  EXPECT_EQ(again.actions[0].action(), v1::OBJECT_ACTION_NOOP) << again.actions[0].unified_diff();
  EXPECT_EQ(DigestOf(again.pinned), "");

  // Drift: terraform run by hand changed the state; the deployer's drift
  // check (plan -detailed-exitcode of what was applied) reports it, the next
  // Ferry plan shows undoing it, and applying that plan heals it.
  TerraformApplyByHand("edited by hand");
  LiveStateObserver observer(&store_, router_.get(), &clock_);
  v1::GetLiveStateRequest get;
  get.set_application_id("infra");
  get.set_environment_id("dev");
  absl::StatusOr<v1::LiveState> live = observer.GetLiveState(get);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  ASSERT_EQ(live->objects_size(), 1);
  EXPECT_EQ(live->objects(0).drift(), v1::DRIFT_STATUS_MODIFIED);
  EXPECT_TRUE(absl::StrContains(live->objects(0).drift_message(), "input: \"edited by hand\" -> \"hello\""))
      << live->objects(0).drift_message();
  Planned heal = PlanFor(kMain);
  ASSERT_TRUE(heal.failure.ok()) << heal.failure;
  ASSERT_EQ(heal.actions.size(), 1u);
  EXPECT_EQ(heal.actions[0].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_TRUE(absl::StrContains(heal.actions[0].unified_diff(), "edited by hand")) << heal.actions[0].unified_diff();
  ASSERT_EQ(Deploy(Spec("p1b", '1', heal.pinned)).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  live = observer.GetLiveState(get);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->objects(0).drift(), v1::DRIFT_STATUS_IN_SYNC) << live->objects(0).drift_message();

  // Stale: two plans made from the same state; the second one is applied
  // first, so the first no longer fits the state and is refused with
  // nothing applied.
  (*target_.mutable_terraform()->mutable_applications())["infra"].mutable_variables()->at("size") = "large";
  Planned p2 = PlanFor(kMain);
  ASSERT_TRUE(p2.failure.ok()) << p2.failure;
  (*target_.mutable_terraform()->mutable_applications())["infra"].mutable_variables()->at("size") = "huge";
  Planned p3 = PlanFor(kMain);
  ASSERT_TRUE(p3.failure.ok()) << p3.failure;
  const std::string d2 = DigestOf(p2.pinned), d3 = DigestOf(p3.pinned);
  ASSERT_FALSE(d2.empty());
  ASSERT_FALSE(d3.empty());
  ASSERT_NE(d2, d3);
  ASSERT_EQ(Deploy(Spec("p3", '3', p3.pinned)).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  Deploy(Spec("p2", '2', p2.pinned));
  // The deployment fails naming the stale plan, and stays FAILED: no
  // automatic rollback, which would apply a fresh plan nobody approved.
  absl::StatusOr<v1::Deployment> stale = store_.Get("dep-p2", true);
  ASSERT_TRUE(stale.ok()) << stale.status();
  EXPECT_EQ(stale->state(), v1::DEPLOYMENT_STATE_FAILED) << stale->message();
  EXPECT_TRUE(absl::StrContains(stale->message(), "not rolled back automatically")) << stale->message();
  DeploymentFilter filter;
  filter.application_id = "infra";
  filter.environment_id = "dev";
  absl::StatusOr<DeploymentPage> all = store_.List(filter);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_FALSE(all->deployments.empty());
  for (const v1::Deployment& d : all->deployments) EXPECT_NE(d.kind(), v1::DEPLOYMENT_KIND_AUTO_ROLLBACK) << d.id();
  EXPECT_TRUE(absl::StrContains(stale->message(), "plan is stale")) << stale->message();
  EXPECT_TRUE(absl::StrContains(stale->message(), d2)) << stale->message();
  audited = AuditedPlanDigests("dep-p2");
  EXPECT_EQ(audited[d2], "STEP_RESULT_FAILED") << "the refused plan's digest is audited with the failed step";
  // Nothing of p2 was applied: the state is p3's ("huge").
  Planned after = PlanFor(kMain);
  ASSERT_TRUE(after.failure.ok()) << after.failure;
  ASSERT_EQ(after.actions.size(), 1u);
  EXPECT_EQ(after.actions[0].action(), v1::OBJECT_ACTION_NOOP) << after.actions[0].unified_diff();
}

TEST_F(TerraformFlowTest, AFailedTerraformPlanFailsTheFerryPlanWithTerraformsMessage) {
  const std::string broken = std::string(kMain) + "resource \"terraform_data\" \"bad\" {\n  input = var.nosuchvariable\n}\n";
  Planned p = PlanFor(broken);
  ASSERT_FALSE(p.failure.ok());
  EXPECT_TRUE(planner::IsRenderFailure(p.failure)) << "not recorded as a failed plan: " << p.failure;
  EXPECT_TRUE(absl::StrContains(p.failure.message(), "terraform plan of Stack \"infra\" failed")) << p.failure;
  EXPECT_TRUE(absl::StrContains(p.failure.message(), "nosuchvariable")) << p.failure;
  EXPECT_FALSE(absl::StrContains(p.failure.message(), kSecret)) << p.failure;
  v1::PlanFailure f = planner::ToPlanFailure(p.failure);
  EXPECT_TRUE(absl::StrContains(f.message(), "nosuchvariable")) << f.DebugString();
}

TEST_F(TerraformFlowTest, AStackWithoutAnApprovedPlanIsNeverApplied) {
  absl::StatusOr<v1::Manifest> m = planner::RenderTerraformStack("infra", "apps/infra", Folder(kMain), {}, json());
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<v1::Manifest> manifests{*m};
  planner::AddTerraformVariables(manifests, "infra", target_);
  v1::Deployment d = Deploy(Spec("p1", '1', manifests[0]));
  EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_TRUE(absl::StrContains(d.message(), "no approved Terraform plan")) << d.message();
  // Nothing was applied: the plan still adds all three resources.
  Planned p = PlanFor(kMain);
  ASSERT_TRUE(p.failure.ok()) << p.failure;
  ASSERT_EQ(p.actions.size(), 1u);
  EXPECT_TRUE(absl::StrContains(p.actions[0].unified_diff(), "\"add\": 3")) << p.actions[0].unified_diff();
}

TEST_F(TerraformFlowTest, AnEnvironmentWithPgStateNeedsTheDeployersStateUrl) {
  terraform::TerraformTargetOptions o;
  o.base.binary = binary_;
  o.plans = plans_.get();
  terraform::TerraformTargetFactory no_url(o, host::WorkloadPolicy(testing::WorkloadsAsTheTestsUid()));
  absl::StatusOr<Target*> t = no_url.For(target_);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "--terraform-state-url")) << t.status();
  // state: configured uses the configuration's own backend.
  target_.mutable_terraform()->set_state(v1::TERRAFORM_STATE_CONFIGURED);
  EXPECT_TRUE(no_url.For(target_).ok());
  // Another kind is not a terraform target.
  v1::DeployTarget host;
  host.set_kind(v1::TARGET_KIND_HOST);
  EXPECT_EQ(no_url.For(host).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::deployer
