// The Ansible target end to end with the real ansible-playbook (Debian's
// ansible package), connection local into a temporary root: the planner's
// render (AnsibleBundle) and diff (DiffObjects) over the deployer's
// ObserveLiveState (check --diff), the deployment runner applying it (each
// task a step), a no-op re-plan, drift after an out-of-band change, a failed
// task rolled back to the previous revision's playbook, secrets kept out of
// plans, and a run as an unprivileged user.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "services/deployer/ansible/ansible_target.h"
#include "services/deployer/deployment_runner.h"
#include "services/deployer/live_state_observer.h"
#include "services/deployer/target_router.h"
#include "services/planner/ansible_bundle.h"
#include "services/planner/differ.h"
#include "tests/deployer/fake_deployment_store.h"
#include "tests/deployer/flow_util.h"
#include "tests/deployer/test_util.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::deployer {
namespace {

namespace fs = std::filesystem;
using testing::FakeDeploymentStore;

constexpr char kSecret[] = "s3cr3t-token-value-42";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The application folder "infra/web" at one revision.
std::vector<planner::TreeEntry> Folder(const std::string& greeting, bool failing_task) {
  std::string site = absl::StrCat(R"(- hosts: web
  gather_facts: false
  tasks:
    - name: write motd
      ansible.builtin.copy:
        dest: "{{ root }}/motd"
        content: "hello )", greeting, R"(\n"
    - name: write token
      ansible.builtin.copy:
        dest: "{{ root }}/token"
        content: "{{ api_token }}\n"
        mode: "0600"
      diff: true
)");
  if (failing_task) {
    site += R"(    - name: migrate database
      ansible.builtin.command: /bin/sh -c 'echo "schema 7 is locked" >&2; exit 3'
)";
  }
  std::vector<planner::TreeEntry> out;
  auto add = [&out](const std::string& path, const std::string& data) {
    planner::TreeEntry e;
    e.path = "infra/web/" + path;
    e.data = data;
    out.push_back(e);
  };
  add("site.yml", site);
  add("inventory/dev/hosts.yml", "web:\n  hosts:\n    web1:\n");
  return out;
}

v1::Manifest Render(const std::string& greeting, bool failing_task = false) {
  v1::Application app;
  app.set_id("web");
  app.set_path("infra/web");
  app.set_render_method(v1::RENDER_METHOD_ANSIBLE);
  absl::StatusOr<v1::Manifest> m = planner::AnsibleBundle(app, Folder(greeting, failing_task), 1 << 20);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.value_or(v1::Manifest());
}

class AnsibleFlowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/bin/ansible-playbook")) << "scripts/install-deps installs Debian's ansible package";
    dir_ = ferry::testing::MakeTempDir("ansible-flow");
    root_ = dir_ + "/root";
    fs::create_directories(root_);
    fs::create_directories(dir_ + "/scratch");
    setenv("FERRY_SECRET_ANSIBLE_TOKEN", kSecret, 1);
    secrets::SecretResolverOptions so;
    so.key = *ferry::secrets::SealedBoxKey::Generate();
    ferry::secrets::SecretSourceOptions sources;
    sources.service = "deployer";
    sources.env_prefix = "FERRY_SECRET_";
    so.sources = *ferry::secrets::SecretSources::Create(sources);
    resolver_ = std::make_unique<secrets::SecretResolver>(std::move(so));
    target_.set_kind(v1::TARGET_KIND_ANSIBLE);
    v1::AnsibleTargetConfig* a = target_.mutable_ansible();
    a->set_connection(v1::ANSIBLE_CONNECTION_LOCAL);
    (*a->mutable_extra_vars())["root"] = root_;
    (*a->mutable_secret_vars())["api_token"].set_env("FERRY_SECRET_ANSIBLE_TOKEN");
  }
  void TearDown() override {
    unsetenv("FERRY_SECRET_ANSIBLE_TOKEN");
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  void MakeFactory(host::WorkloadPolicyOptions workloads) {
    ansible::PlaybookOptions o;
    o.scratch_root = dir_ + "/scratch";
    o.timeout = absl::Minutes(2);
    factory_ = std::make_unique<ansible::AnsibleTargetFactory>(o, host::WorkloadPolicy(workloads), resolver_.get(), &clock_);
    router_ = std::make_unique<TargetRouter>(nullptr, nullptr, factory_.get());
  }

  // What the planner does: ObserveLiveState with the desired object, then
  // the diff.
  std::vector<v1::PlanAction> PlanFor(const v1::Manifest& desired) {
    LiveStateObserver observer(&store_, router_.get(), &clock_);
    v1::ObserveLiveStateRequest req;
    req.set_application_id("web");
    req.set_environment_id("dev");
    *req.mutable_target() = target_;
    *req.add_desired() = desired;
    absl::StatusOr<v1::ObserveLiveStateResponse> live = observer.ObserveLiveState(req, 4 << 20);
    EXPECT_TRUE(live.ok()) << live.status();
    if (!live.ok()) return {};
    std::vector<v1::LiveObject> objects(live->state().objects().begin(), live->state().objects().end());
    return planner::DiffObjects({desired}, objects, planner::DiffOptions{});
  }

  v1::Plan Spec(const std::string& id, char sha, const v1::Manifest& m) {
    return testing::FlowPlan(id, "web", sha, m, target_, 120);
  }

  v1::Deployment Deploy(const v1::Plan& spec) {
    return testing::RunApprovedFlowPlan(spec, &store_, router_.get(), &notifier_, &metrics_, &clock_);
  }

  std::string dir_, root_;
  v1::DeployTarget target_;
  std::unique_ptr<secrets::SecretResolver> resolver_;
  ferry::testing::FakeClock clock_;
  std::unique_ptr<ansible::AnsibleTargetFactory> factory_;
  std::unique_ptr<TargetRouter> router_;
  FakeDeploymentStore store_;
  DeploymentNotifier notifier_;
  prometheus::Registry registry_;
  DeployerMetrics metrics_{registry_};
};

TEST_F(AnsibleFlowTest, PlanApplyNoopReplanDriftAndAFailedTaskRolledBack) {
  MakeFactory(testing::WorkloadsAsTheTestsUid());
  const v1::Manifest v1 = Render("v1");

  // Plan: each task and host that would change, with its diff; nothing
  // changed on the host yet (--check), and no secret in the plan.
  std::vector<v1::PlanAction> plan = PlanFor(v1);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].action(), v1::OBJECT_ACTION_UPDATE);
  const std::string& diff = plan[0].unified_diff();
  EXPECT_TRUE(absl::StrContains(diff, "\"task\": \"write motd\"")) << diff;
  EXPECT_TRUE(absl::StrContains(diff, "\"host\": \"web1\"")) << diff;
  EXPECT_TRUE(absl::StrContains(diff, "\"hello v1\"")) << diff;      // the motd task's diff (after)
  EXPECT_TRUE(absl::StrContains(diff, "\"task\": \"write token\"")) << diff;
  EXPECT_FALSE(absl::StrContains(diff, kSecret)) << diff;
  EXPECT_FALSE(absl::StrContains(diff, "ansible-local-")) << "a temporary path as the diff's file: " << diff;
  EXPECT_FALSE(absl::StrContains(plan[0].json_patch(), kSecret));
  EXPECT_FALSE(fs::exists(root_ + "/motd")) << "--check changed the host";

  // Approve and apply: the playbook ran, every task result is a step.
  v1::Deployment d1 = Deploy(Spec("p1", '1', v1));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();
  EXPECT_EQ(Read(root_ + "/motd"), "hello v1\n");
  EXPECT_EQ(Read(root_ + "/token"), std::string(kSecret) + "\n");
  absl::StatusOr<v1::Deployment> full = store_.Get("dep-p1", true);
  ASSERT_TRUE(full.ok());
  std::map<std::string, v1::DeploymentStep> tasks;
  for (const v1::DeploymentStep& s : full->steps()) {
    EXPECT_FALSE(absl::StrContains(s.message(), kSecret));
    if (s.kind() == v1::STEP_KIND_TASK) tasks[s.object().namespace_() + "/" + s.object().name()] = s;
  }
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks["web1/write motd"].result(), v1::STEP_RESULT_SUCCEEDED);
  EXPECT_EQ(tasks["web1/write motd"].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_TRUE(absl::StrContains(tasks["web1/write motd"].message(), "changed (site.yml:4)"))
      << tasks["web1/write motd"].message();
  bool audited = false;
  for (const v1::Event& e : store_.events()) {
    EXPECT_FALSE(absl::StrContains(e.DebugString(), kSecret)) << e.DebugString();
    if (e.action() == v1::AUDIT_ACTION_DEPLOYMENT_STEP && absl::StrContains(e.message(), "AnsibleTask/web1/write motd")) {
      audited = e.details().fields().at("manifests_digest").string_value() == Spec("p1", '1', v1).manifests_digest();
    }
  }
  EXPECT_TRUE(audited) << "the task step is audited with the plan digest";

  // Re-plan of the same revision: nothing would change.
  plan = PlanFor(v1);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].action(), v1::OBJECT_ACTION_NOOP) << plan[0].unified_diff();

  // Drift: an out-of-band change is found by --check of what was applied.
  {
    std::ofstream(root_ + "/motd") << "edited by hand\n";
  }
  LiveStateObserver observer(&store_, router_.get(), &clock_);
  v1::GetLiveStateRequest get;
  get.set_application_id("web");
  get.set_environment_id("dev");
  absl::StatusOr<v1::LiveState> live = observer.GetLiveState(get);
  ASSERT_TRUE(live.ok()) << live.status();
  EXPECT_EQ(live->sync_status(), v1::SYNC_STATUS_OUT_OF_SYNC);
  ASSERT_EQ(live->objects_size(), 1);
  EXPECT_EQ(live->objects(0).drift(), v1::DRIFT_STATUS_MODIFIED);
  EXPECT_TRUE(absl::StrContains(live->objects(0).drift_message(), "web1: write motd")) << live->objects(0).drift_message();
  EXPECT_EQ(Read(root_ + "/motd"), "edited by hand\n") << "the drift check changed the host";
  plan = PlanFor(v1);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_TRUE(absl::StrContains(plan[0].unified_diff(), "edited by hand")) << plan[0].unified_diff();
  EXPECT_TRUE(absl::StrContains(plan[0].unified_diff(), absl::StrCat("\"file\": \"", root_, "/motd\"")))
      << plan[0].unified_diff();
  ASSERT_EQ(Deploy(Spec("p1b", '1', v1)).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  EXPECT_EQ(Read(root_ + "/motd"), "hello v1\n");

  // v2 changes the motd, then a task fails: the deployment fails naming the
  // task, host and message, and v1's playbook is applied again.
  const v1::Manifest v2 = Render("v2", true);
  plan = PlanFor(v2);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_TRUE(absl::StrContains(plan[0].unified_diff(), "\"hello v2\"")) << plan[0].unified_diff();
  v1::Deployment d2 = Deploy(Spec("p2", '2', v2));
  absl::StatusOr<v1::Deployment> failed = store_.Get("dep-p2", true);
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state(), v1::DEPLOYMENT_STATE_ROLLED_BACK) << failed->message();
  EXPECT_TRUE(absl::StrContains(failed->message(), "task \"migrate database\" (site.yml:"))
      << failed->message();
  EXPECT_TRUE(absl::StrContains(failed->message(), "failed on web1")) << failed->message();
  EXPECT_TRUE(absl::StrContains(failed->message(), "schema 7 is locked")) << failed->message();
  EXPECT_EQ(Read(root_ + "/motd"), "hello v1\n") << "not rolled back to v1's playbook";
  absl::StatusOr<v1::PinState> pin = store_.GetPin("web", "dev");
  ASSERT_TRUE(pin.ok());
  EXPECT_TRUE(pin->pinned());
  EXPECT_EQ(pin->sha(), std::string(40, '1'));
}

TEST_F(AnsibleFlowTest, ABrokenPlaybookIsShownInThePlanAndFailsTheApplyNamingTheError) {
  MakeFactory(testing::WorkloadsAsTheTestsUid());
  v1::Manifest broken = Render("v1");
  broken.set_json(absl::StrReplaceAll(broken.json(), {{"ansible.builtin.copy:", "ansible.builtin.nosuchmodule:"}}));
  std::vector<v1::PlanAction> plan = PlanFor(broken);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_TRUE(absl::StrContains(plan[0].unified_diff(), "checkError")) << plan[0].unified_diff();
  EXPECT_TRUE(absl::StrContains(plan[0].unified_diff(), "nosuchmodule")) << plan[0].unified_diff();
  v1::Deployment d = Deploy(Spec("p1", '1', broken));
  EXPECT_EQ(d.state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_TRUE(absl::StrContains(d.message(), "nosuchmodule")) << d.message();
  EXPECT_FALSE(fs::exists(root_ + "/motd"));
}

TEST_F(AnsibleFlowTest, AMissingInventoryOrSecretIsRefusedByName) {
  MakeFactory(testing::WorkloadsAsTheTestsUid());
  target_.mutable_ansible()->set_inventory("inventory/prod");
  absl::StatusOr<Target*> t = router_->For(target_);
  ASSERT_TRUE(t.ok());
  absl::Status s = (*t)->Apply(AppScope{"web", "dev"}, TargetObject{{"ansible.ferry.dev", "AnsiblePlaybook", "", "web"},
                                                                   Render("v1").json(), "infra/web/site.yml", 0},
                               nullptr, clock_.Now() + absl::Minutes(1), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(s.message(), "inventory \"inventory/prod\"")) << s;
  target_.mutable_ansible()->clear_inventory();
  (*target_.mutable_ansible()->mutable_secret_vars())["api_token"].set_env("FERRY_SECRET_NOT_SET");
  t = router_->For(target_);
  ASSERT_TRUE(t.ok());
  s = (*t)->Apply(AppScope{"web", "dev"}, TargetObject{{"ansible.ferry.dev", "AnsiblePlaybook", "", "web"},
                                                      Render("v1").json(), "infra/web/site.yml", 0},
                  nullptr, clock_.Now() + absl::Minutes(1), nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "secret_vars.api_token")) << s;
  EXPECT_FALSE(fs::exists(root_ + "/motd")) << "half-applied";
}

TEST_F(AnsibleFlowTest, RunsAsTheEnvironmentsRunAsUser) {
  if (geteuid() != 0) GTEST_SKIP() << "runAs needs a root test (CI runs as root)";
  struct passwd* nobody = getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  ASSERT_EQ(::chown(root_.c_str(), nobody->pw_uid, nobody->pw_gid), 0);
  ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((dir_ + "/scratch").c_str(), 0755), 0);
  MakeFactory(host::WorkloadPolicyOptions{});
  target_.mutable_ansible()->mutable_run_as()->set_user("nobody");
  ASSERT_EQ(Deploy(Spec("p1", '1', Render("v1"))).state(), v1::DEPLOYMENT_STATE_SUCCEEDED);
  struct stat st {};
  ASSERT_EQ(::stat((root_ + "/motd").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->pw_uid) << "the playbook did not run as nobody";
  // Root is refused without allowRoot (the host target's rules).
  target_.mutable_ansible()->mutable_run_as()->set_user("root");
  absl::StatusOr<Target*> t = router_->For(target_);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(t.status().message(), "run_as")) << t.status();
}

}  // namespace
}  // namespace ferry::deployer
