// BlastRadius over an in-memory repo-watcher (FakeRepoSource: commits are
// whole trees, blob ids content hashes) with the real renderer (kubectl
// kustomize from .tools/bin) and the fake store's render cache.
#include "services/planner/preview/blast_radius.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/planner/fake_planner_store.h"
#include "tests/planner/fake_repo_source.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::FakeRepoSource;
using testing::FakeTree;

std::string TempDir(const std::string& prefix) {
  std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + ".XXXXXX")).string();
  return ::mkdtemp(tmpl.data()) == nullptr ? std::string() : tmpl;
}

class BlastRadiusTest : public ::testing::Test {
 protected:
  BlastRadiusTest() {
    options_.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
    options_.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
    options_.timeout = absl::Seconds(60);
  }

  void SetUp() override {
    ASSERT_EQ(::access(options_.kubectl_path.c_str(), X_OK), 0) << "run scripts/install-k8s-tools";
    // Two shared bases; three applications on the first, one on the second,
    // one plain application; two environments.
    tree_["bases/web/kustomization.yaml"].data = "resources:\n- deployment.yaml\n";
    tree_["bases/web/deployment.yaml"].data = Deployment("web", 1);
    tree_["bases/worker/kustomization.yaml"].data = "resources:\n- configmap.yaml\n";
    tree_["bases/worker/configmap.yaml"].data =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: worker\ndata:\n  mode: batch\n";
    for (const char* app : {"shop", "blog", "wiki"}) {
      tree_[absl::StrCat("apps/", app, "/kustomization.yaml")].data =
          absl::StrCat("namespace: ", app, "\nresources:\n- ../../bases/web\n");
    }
    tree_["apps/jobs/kustomization.yaml"].data = "namespace: jobs\nresources:\n- ../../bases/worker\n";
    tree_["apps/static/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: static\n";
    tree_["README.md"].data = "monorepo\n";
    base_ = repo_.Commit("repo", "refs/heads/main", tree_);
    ConfigChange change;
    for (const char* env : {"staging", "prod"}) {
      v1::Environment e;
      e.set_id(env);
      e.set_approval(std::string(env) == "prod" ? v1::APPROVAL_POLICY_MANUAL : v1::APPROVAL_POLICY_AUTO);
      if (std::string(env) == "prod") {
        e.set_promote_from("staging");
        e.add_required_checks("ci/test");
      }
      change.create_environments.push_back(e);
    }
    for (const char* app : {"shop", "blog", "wiki", "jobs"})
      change.create_applications.push_back(App(app, absl::StrCat("apps/", app), v1::RENDER_METHOD_KUSTOMIZE));
    change.create_applications.push_back(App("static", "apps/static", v1::RENDER_METHOD_PLAIN));
    v1::Application other = App("shop-release", "apps/shop", v1::RENDER_METHOD_KUSTOMIZE);
    other.set_ref("refs/heads/release");  // another branch: a PR to main does not deploy it
    change.create_applications.push_back(other);
    ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  }

  static std::string Deployment(const std::string& name, int replicas) {
    return absl::StrCat("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ", name, "\nspec:\n  replicas: ", replicas,
                        "\n  selector:\n    matchLabels:\n      app: ", name, "\n  template:\n    metadata:\n      labels:\n"
                        "        app: ", name, "\n    spec:\n      containers:\n      - name: main\n        image: nginx\n");
  }

  static v1::Application App(const std::string& id, const std::string& path, v1::RenderMethod method) {
    v1::Application a;
    a.set_id(id);
    a.set_repository_id("repo");
    a.set_ref("main");
    a.set_path(path);
    a.set_render_method(method);
    a.add_environment_ids("staging");
    a.add_environment_ids("prod");
    a.mutable_sync_policy()->set_automated(true);
    return a;
  }

  // A pull request from the base commit to `head` (committed on its own ref).
  v1::PullRequest Pr(const FakeTree& head) {
    v1::Revision rev = repo_.Commit("repo", absl::StrCat("refs/pull/7/head-", ++pushes_), head);
    v1::PullRequest pr;
    pr.set_repository_id("repo");
    pr.set_number(7);
    pr.set_head_ref("refs/pull/7/head");
    pr.set_head_sha(rev.sha());
    pr.set_base_ref("refs/heads/main");
    pr.set_base_sha(base_.sha());
    pr.set_state(v1::PULL_REQUEST_STATE_OPEN);
    return pr;
  }

  absl::StatusOr<v1::PullRequestPreview> Compute(const v1::PullRequest& pr, int concurrency = 8) {
    SnapshotRepoSource snapshot(&repo_);
    Renderer renderer(&snapshot, options_);
    BlastRadiusOptions radius_options;
    radius_options.concurrency = concurrency;
    BlastRadius radius(&store_, &store_, &snapshot, &renderer, nullptr, &clock_, radius_options);
    return radius.Compute(pr);
  }

  static std::set<std::string> Pairs(const v1::PullRequestPreview& p) {
    std::set<std::string> out;
    for (const auto& e : p.entries()) out.insert(absl::StrCat(e.application_id(), "/", e.environment_id()));
    return out;
  }

  RendererOptions options_;
  FakeRepoSource repo_;
  testing::FakePlannerStore store_;
  ferry::testing::FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  FakeTree tree_;
  v1::Revision base_;
  int pushes_ = 0;
};

TEST_F(BlastRadiusTest, SharedBaseChangeListsEveryApplicationAndEnvironmentUsingItAndNothingElse) {
  FakeTree head = tree_;
  head["bases/web/deployment.yaml"].data = Deployment("web", 3);
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"blog/prod", "blog/staging", "shop/prod", "shop/staging", "wiki/prod",
                                              "wiki/staging"}));
  EXPECT_TRUE(p->errors().empty());
  EXPECT_EQ(p->applications_considered(), 5);  // not shop-release (another branch)
  EXPECT_EQ(p->applications_compared(), 3);    // jobs and static never rendered
  for (const auto& e : p->entries()) {
    EXPECT_EQ(e.change(), v1::PREVIEW_CHANGE_MANIFESTS);
    ASSERT_EQ(e.actions_size(), 1) << e.application_id();
    EXPECT_EQ(e.actions(0).action(), v1::OBJECT_ACTION_UPDATE);
    EXPECT_EQ(e.actions(0).object().kind(), "Deployment");
    EXPECT_NE(e.actions(0).unified_diff().find("\"replicas\": 3"), std::string::npos) << e.actions(0).unified_diff();
    std::set<v1::HoldReason> reasons;
    for (const auto& h : e.holds()) reasons.insert(h.reason());
    if (e.environment_id() == "prod") {
      EXPECT_EQ(reasons, (std::set<v1::HoldReason>{v1::HOLD_REASON_AWAITING_APPROVAL, v1::HOLD_REASON_PROMOTION_GATE,
                                                   v1::HOLD_REASON_CHECKS_PENDING}));
    } else {
      EXPECT_TRUE(reasons.empty());
    }
  }
}

TEST_F(BlastRadiusTest, UnrelatedFileListsNothingAndRendersNothing) {
  FakeTree head = tree_;
  head["README.md"].data = "monorepo, now documented\n";
  head["docs/new.md"].data = "new\n";
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->entries().empty());
  EXPECT_EQ(p->applications_compared(), 0);
}

TEST_F(BlastRadiusTest, ANewBaseReferenceAtTheHeadIsFollowed) {
  // jobs' overlay now also uses the web base: only jobs changes (the web
  // base itself does not).
  FakeTree head = tree_;
  head["apps/jobs/kustomization.yaml"].data = "namespace: jobs\nresources:\n- ../../bases/worker\n- ../../bases/web\n";
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"jobs/prod", "jobs/staging"}));
  ASSERT_EQ(p->entries(0).actions_size(), 1);
  EXPECT_EQ(p->entries(0).actions(0).action(), v1::OBJECT_ACTION_CREATE);
}

TEST_F(BlastRadiusTest, ABrokenHeadIsARenderFailureEntry) {
  FakeTree head = tree_;
  head["bases/worker/kustomization.yaml"].data = "resources:\n- missing.yaml\n";
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"jobs/prod", "jobs/staging"}));
  EXPECT_EQ(p->entries(0).change(), v1::PREVIEW_CHANGE_RENDER_FAILED);
  EXPECT_FALSE(p->entries(0).render_error().empty());
}

TEST_F(BlastRadiusTest, FerryYamlAddsRemovesAndRedefinesApplications) {
  // A declaration source on main declaring "decl-a" and "decl-b".
  tree_["ferry.yaml"].data =
      "applications:\n"
      "  decl-a: {path: apps/static, render: plain, environments: [staging], sync: {automated: false}}\n"
      "  decl-b: {path: apps/shop, render: kustomize, environments: [staging], sync: {automated: false}}\n";
  base_ = repo_.Commit("repo", "refs/heads/main", tree_);
  v1::ApplyDeclarativeConfigRequest req;
  ConfigChange change;
  DeclarationSourceRecord rec;
  rec.key = "repo:refs/heads/main:ferry.yaml";
  rec.source.set_repository_id("repo");
  rec.source.set_ref("refs/heads/main");
  rec.source.set_path("ferry.yaml");
  change.source = rec;
  v1::Application a = App("decl-a", "apps/static", v1::RENDER_METHOD_PLAIN);
  a.clear_environment_ids();
  a.add_environment_ids("staging");
  a.mutable_sync_policy()->set_automated(false);
  v1::Application b = App("decl-b", "apps/shop", v1::RENDER_METHOD_KUSTOMIZE);
  b.clear_environment_ids();
  b.add_environment_ids("staging");
  b.mutable_sync_policy()->set_automated(false);
  change.create_applications = {a, b};
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());

  FakeTree head = tree_;
  head["ferry.yaml"].data =
      "applications:\n"
      "  decl-b: {path: apps/blog, render: kustomize, environments: [staging], sync: {automated: false}}\n"
      "  decl-c: {path: apps/jobs, render: kustomize, environments: [staging, prod]}\n";
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->errors().empty()) << p->errors(0);
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"decl-a/staging", "decl-b/staging", "decl-c/prod", "decl-c/staging"}));
  for (const auto& e : p->entries()) {
    if (e.application_id() == "decl-a") {
      EXPECT_EQ(e.change(), v1::PREVIEW_CHANGE_APPLICATION_REMOVED);
      ASSERT_EQ(e.actions_size(), 1);
      EXPECT_EQ(e.actions(0).action(), v1::OBJECT_ACTION_DELETE);
    } else if (e.application_id() == "decl-b") {
      EXPECT_EQ(e.change(), v1::PREVIEW_CHANGE_DEFINITION);
    } else {
      EXPECT_EQ(e.change(), v1::PREVIEW_CHANGE_APPLICATION_ADDED);
      ASSERT_EQ(e.actions_size(), 1);
      EXPECT_EQ(e.actions(0).action(), v1::OBJECT_ACTION_CREATE);
    }
  }

  // A head ferry.yaml that does not parse is an error of the preview.
  head["ferry.yaml"].data = "applications: [\n";
  p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->errors_size(), 1);
  EXPECT_NE(p->errors(0).find("ferry.yaml"), std::string::npos) << p->errors(0);
}

TEST_F(BlastRadiusTest, SecondComputeReadsBasesOnceAndRendersFromTheCache) {
  FakeTree head = tree_;
  head["bases/web/deployment.yaml"].data = Deployment("web", 2);
  v1::PullRequest pr = Pr(head);
  ASSERT_TRUE(Compute(pr).ok());
  size_t reads_before = repo_.reads();
  absl::StatusOr<v1::PullRequestPreview> again = Compute(pr);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(Pairs(*again).size(), 6u);
  // Two tree listings, the kustomization files once each by content; no
  // render reads (every render comes from the cache).
  EXPECT_LE(repo_.reads() - reads_before, 12u);
}

// The renders a preview needs are batched per commit (Renderer::RenderBatch)
// in units of about (renders / workers): with one worker, the three
// applications of the web base render in one kubectl run at the base and
// one at the head, with the same entries as alone.
TEST_F(BlastRadiusTest, AffectedKustomizeApplicationsRenderInOneKubectlRunPerCommit) {
  const std::string log = TempDir("kubectl-log") + "/runs";
  const std::string wrapper = TempDir("kubectl-wrap") + "/kubectl";
  std::ofstream(wrapper) << "#!/bin/sh\nif [ \"$1\" = kustomize ]; then echo run >> " << log << "; fi\nexec "
                         << options_.kubectl_path << " \"$@\"\n";
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  options_.kubectl_path = wrapper;
  FakeTree head = tree_;
  head["bases/web/deployment.yaml"].data = Deployment("web", 4);
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head), /*concurrency=*/1);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"blog/prod", "blog/staging", "shop/prod", "shop/staging", "wiki/prod",
                                              "wiki/staging"}));
  for (const auto& e : p->entries()) {
    EXPECT_EQ(e.change(), v1::PREVIEW_CHANGE_MANIFESTS);
    ASSERT_EQ(e.actions_size(), 1) << e.application_id();
    EXPECT_EQ(e.actions(0).object().kind(), "Deployment");
    EXPECT_EQ(e.actions(0).object().namespace_(), e.application_id());
    EXPECT_NE(e.actions(0).unified_diff().find("\"replicas\": 4"), std::string::npos) << e.actions(0).unified_diff();
  }
  std::ifstream in(log);
  int runs = 0;
  for (std::string line; std::getline(in, line);) ++runs;
  EXPECT_EQ(runs, 2);
  std::filesystem::remove_all(std::filesystem::path(log).parent_path());
  std::filesystem::remove_all(std::filesystem::path(wrapper).parent_path());
}

// A Helm values file outside the chart's folder is an input: changing it
// lists the application, changing another values file lists nothing.
TEST_F(BlastRadiusTest, AHelmValuesFileOutsideTheChartIsFollowed) {
  tree_["apps/chart/Chart.yaml"].data = "apiVersion: v2\nname: chart\nversion: 0.1.0\n";
  tree_["apps/chart/templates/cm.yaml"].data =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: chart\ndata:\n  size: {{ .Values.size | quote }}\n";
  tree_["values/shared.yaml"].data = "size: small\n";
  tree_["values/other.yaml"].data = "size: other\n";
  base_ = repo_.Commit("repo", "refs/heads/main", tree_);
  v1::Application chart = App("chart", "apps/chart", v1::RENDER_METHOD_HELM);
  chart.mutable_helm()->add_values_files("../../values/shared.yaml");
  ConfigChange change;
  change.create_applications = {chart};
  ASSERT_TRUE(store_.ApplyConfigChange(change).ok());

  FakeTree head = tree_;
  head["values/shared.yaml"].data = "size: large\n";
  absl::StatusOr<v1::PullRequestPreview> p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Pairs(*p), (std::set<std::string>{"chart/prod", "chart/staging"}));
  ASSERT_EQ(p->entries(0).actions_size(), 1);
  EXPECT_EQ(p->entries(0).actions(0).action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_EQ(p->applications_compared(), 1);

  head = tree_;
  head["values/other.yaml"].data = "size: changed\n";
  p = Compute(Pr(head));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->entries().empty());
  EXPECT_EQ(p->applications_compared(), 0);
}

TEST_F(BlastRadiusTest, RefusesAnIncompletePullRequest) {
  v1::PullRequest pr = Pr(tree_);
  pr.clear_base_sha();
  EXPECT_TRUE(absl::IsInvalidArgument(Compute(pr).status()));
}

}  // namespace
}  // namespace ferry::planner
