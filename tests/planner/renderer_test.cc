// Renders real files with the real tools (helm and kubectl installed by
// scripts/install-k8s-tools into .tools/bin).

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <semaphore>
#include <algorithm>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_join.h"
#include "services/planner/kustomize_batch.h"
#include "services/planner/render_failure.h"
#include "services/planner/renderer.h"
#include "tests/planner/fake_repo_source.h"
#include "tests/support/test_database.h"

namespace ferry::planner {
namespace {

using nlohmann::json;
using testing::FakeRepoSource;
using testing::FakeTree;

class RendererTest : public ::testing::Test {
 protected:
  RendererTest() {
    options_.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
    options_.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
    options_.timeout = absl::Seconds(60);
  }

  void SetUp() override {
    ASSERT_EQ(::access(options_.helm_path.c_str(), X_OK), 0) << "run scripts/install-k8s-tools";
    ASSERT_EQ(::access(options_.kubectl_path.c_str(), X_OK), 0) << "run scripts/install-k8s-tools";
    dir_ = ferry::testing::MakeTempDir("planner-render");
  }

  void Write(const std::string& path, const std::string& text) {
    std::filesystem::path p = std::filesystem::path(dir_) / path;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  // Commits the folder written so far and renders `app` at it.
  absl::StatusOr<std::vector<v1::Manifest>> RenderApp(const v1::Application& app, RenderInputs* inputs_out = nullptr) {
    v1::Revision rev = repo_.Commit("repo", "refs/heads/main", testing::LoadTree(dir_));
    Renderer renderer(&repo_, options_);
    absl::StatusOr<RenderInputs> inputs = renderer.CollectInputs(app, rev.sha());
    if (!inputs.ok()) return inputs.status();
    if (inputs_out) *inputs_out = *inputs;
    return renderer.Render(app, rev.sha(), *inputs);
  }

  static v1::Application App(const std::string& path, v1::RenderMethod method) {
    v1::Application app;
    app.set_id("web");
    app.set_repository_id("repo");
    app.set_ref("refs/heads/main");
    app.set_path(path);
    app.set_render_method(method);
    return app;
  }

  RendererOptions options_;
  FakeRepoSource repo_;
  std::string dir_;
};

TEST_F(RendererTest, PlainRendersEveryYamlFileAndDocument) {
  Write("apps/web/process.yaml",
        "apiVersion: ferry.dev/v1\nkind: Process\nmetadata: {name: web}\nspec: {command: [./web]}\n---\n"
        "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: web-conf}\nspec: {path: web.conf, content: x}\n");
  Write("apps/web/sub/extra.yml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n");
  Write("apps/web/README.md", "not yaml: [");
  Write("apps/other/x.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: not-mine}\n");
  auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_PLAIN));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 3u);
  EXPECT_EQ((*m)[0].object().kind(), "ConfigMap");
  EXPECT_EQ((*m)[0].source_path(), "apps/web/sub/extra.yml");
  EXPECT_EQ((*m)[1].object().kind(), "ConfigFile");
  EXPECT_EQ((*m)[2].object().kind(), "Process");
}

TEST_F(RendererTest, PlainMalformedYamlNamesFileAndLine) {
  Write("apps/web/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  Write("apps/web/bad.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  labels: {a: [\n");
  auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_PLAIN));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  v1::PlanFailure f = ToPlanFailure(m.status());
  EXPECT_EQ(f.path(), "apps/web/bad.yaml");
  EXPECT_GT(f.line(), 0);
  EXPECT_NE(f.message().find("malformed YAML"), std::string::npos) << f.message();
}

TEST_F(RendererTest, KustomizeRendersOverlayWithBaseInAnotherFolder) {
  Write("base/kustomization.yaml", "resources: [cm.yaml]\n");
  Write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: debug}\n");
  Write("overlays/prod/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: prod-\npatches:\n  - path: level.yaml\n");
  Write("overlays/prod/level.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: info}\n");
  RenderInputs inputs;
  auto m = RenderApp(App("overlays/prod", v1::RENDER_METHOD_KUSTOMIZE), &inputs);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].object().name(), "prod-settings");
  EXPECT_EQ(json::parse((*m)[0].json())["data"]["level"], "info");
  EXPECT_EQ(inputs.roots, (std::vector<std::string>{"overlays/prod", "base"}));
}

TEST_F(RendererTest, KustomizeCacheKeyFollowsTheBaseNotUnrelatedFiles) {
  Write("base/kustomization.yaml", "resources: [cm.yaml]\n");
  Write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {a: '1'}\n");
  Write("app/kustomization.yaml", "resources: [../base]\n");
  RenderInputs first, unrelated, changed;
  ASSERT_TRUE(RenderApp(App("app", v1::RENDER_METHOD_KUSTOMIZE), &first).ok());
  Write("docs/readme.md", "hello");
  ASSERT_TRUE(RenderApp(App("app", v1::RENDER_METHOD_KUSTOMIZE), &unrelated).ok());
  Write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: s}\ndata: {a: '2'}\n");
  ASSERT_TRUE(RenderApp(App("app", v1::RENDER_METHOD_KUSTOMIZE), &changed).ok());
  EXPECT_EQ(first.cache_key, unrelated.cache_key);
  EXPECT_NE(first.cache_key, changed.cache_key);
}

TEST_F(RendererTest, KustomizeErrorIsReportedWithTheFile) {
  Write("app/kustomization.yaml", "resources: [missing.yaml]\n");
  auto m = RenderApp(App("app", v1::RENDER_METHOD_KUSTOMIZE));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("kubectl kustomize failed"), std::string::npos) << m.status();
  EXPECT_NE(m.status().message().find("missing.yaml"), std::string::npos) << m.status();
  EXPECT_EQ(m.status().message().find("ferry-render-"), std::string::npos) << "scratch path leaked: " << m.status();
}

TEST_F(RendererTest, KustomizeRemoteResourcesAreRefused) {
  Write("app/kustomization.yaml", "resources: [https://github.com/example/repo//base]\n");
  auto m = RenderApp(App("app", v1::RENDER_METHOD_KUSTOMIZE));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("remote resource"), std::string::npos) << m.status();
}


TEST_F(RendererTest, HelmRendersWithValuesFilesInOrder) {
  Write("charts/web/Chart.yaml", "apiVersion: v2\nname: webchart\nversion: 0.1.0\n");
  Write("charts/web/values.yaml", "port: 80\nlevel: debug\n");
  Write("charts/web/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cfg\n  namespace: {{ .Release.Namespace }}\n"
        "data:\n  port: {{ .Values.port | quote }}\n  level: {{ .Values.level }}\n");
  Write("env/prod-values.yaml", "level: warn\n");
  v1::Application app = App("charts/web", v1::RENDER_METHOD_HELM);
  app.mutable_helm()->add_values_files("values.yaml");
  app.mutable_helm()->add_values_files("../../env/prod-values.yaml");
  app.mutable_helm()->set_namespace_("shop");
  RenderInputs inputs;
  auto m = RenderApp(app, &inputs);
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  json cm = json::parse((*m)[0].json());
  EXPECT_EQ(cm["metadata"]["name"], "web-cfg");
  EXPECT_EQ(cm["metadata"]["namespace"], "shop");
  EXPECT_EQ(cm["data"]["port"], "80");
  EXPECT_EQ(cm["data"]["level"], "warn");
  EXPECT_EQ((*m)[0].source_path(), "charts/web/templates/cm.yaml");
  EXPECT_EQ(inputs.roots, (std::vector<std::string>{"charts/web", "env/prod-values.yaml"}));
}

// Issue #23: the planner plans more applications at once than it runs tools
// at once: renders (and checks) share --tool-processes slots. A stand-in
// helm logs when each run starts and ends; four renders at once on one slot
// never overlap, and without slots they do (so the log can tell).
TEST_F(RendererTest, ToolRunsAtOnceStayWithinTheirSlots) {
  const std::string tools = ferry::testing::MakeTempDir("planner-tools");
  const std::string log = tools + "/runs.log";
  const std::string helm = tools + "/helm";
  std::ofstream(helm) << "#!/bin/sh\n"
                         "[ \"$1\" = template ] || { echo v3.0.0; exit 0; }\n"
                         "echo \"start $(date +%s%N)\" >> " << log << "\n"
                         "sleep 0.2\n"
                         "echo \"end $(date +%s%N)\" >> " << log << "\n"
                         "printf -- '---\\n# Source: web/templates/cm.yaml\\napiVersion: v1\\nkind: ConfigMap\\n"
                         "metadata:\\n  name: cfg\\n'\n";
  ASSERT_EQ(::chmod(helm.c_str(), 0755), 0);
  Write("charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  Write("charts/web/templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n");
  const v1::Revision rev = repo_.Commit("repo", "refs/heads/main", testing::LoadTree(dir_));
  const v1::Application app = App("charts/web", v1::RENDER_METHOD_HELM);
  // The most runs of the stand-in at once, from its log.
  auto most_at_once = [&](std::counting_semaphore<>* slots) {
    std::filesystem::remove(log);
    RendererOptions options = options_;
    options.helm_path = helm;
    options.tool_slots = slots;
    Renderer renderer(&repo_, options);
    absl::StatusOr<RenderInputs> inputs = renderer.CollectInputs(app, rev.sha());
    EXPECT_TRUE(inputs.ok()) << inputs.status();
    if (!inputs.ok()) return -1;
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i)
      threads.emplace_back([&] {
        absl::StatusOr<std::vector<v1::Manifest>> m = renderer.Render(app, rev.sha(), *inputs);
        EXPECT_TRUE(m.ok()) << m.status();
      });
    for (std::thread& t : threads) t.join();
    std::vector<std::pair<int64_t, int>> edges;  // (time, +1 start / -1 end)
    std::ifstream in(log);
    std::string what;
    int64_t at = 0;
    while (in >> what >> at) edges.emplace_back(at, what == "start" ? 1 : -1);
    EXPECT_EQ(edges.size(), 8u);
    std::sort(edges.begin(), edges.end());
    int now = 0, most = 0;
    for (const auto& [t, d] : edges) most = std::max(most, now += d);
    return most;
  };
  std::counting_semaphore<> one(1);
  EXPECT_EQ(most_at_once(&one), 1);
  std::counting_semaphore<> two(2);
  EXPECT_LE(most_at_once(&two), 2);
  EXPECT_GT(most_at_once(nullptr), 1) << "four renders without slots run at once";
}

TEST_F(RendererTest, HelmFailingTemplateNamesTheTemplateAndLine) {
  Write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  Write("chart/templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  image: {{ required \"image is required\" .Values.image }}\n");
  auto m = RenderApp(App("chart", v1::RENDER_METHOD_HELM));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  v1::PlanFailure f = ToPlanFailure(m.status());
  EXPECT_NE(f.message().find("image is required"), std::string::npos) << f.message();
  EXPECT_EQ(f.path(), "chart/templates/cm.yaml") << f.message();
  EXPECT_EQ(f.line(), 6) << f.message();
}

TEST_F(RendererTest, RenderHangingPastItsTimeoutIsKilled) {
  // A stand-in helm that never finishes.
  std::string fake = ferry::testing::MakeTempDir("fake-helm") + "/helm";
  std::ofstream(fake) << "#!/bin/sh\nif [ \"$1\" = version ]; then echo v0.0.0-hang; exit 0; fi\nsleep 60\n";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  options_.helm_path = fake;
  options_.timeout = absl::Seconds(1);
  Write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  absl::Time start = absl::Now();
  auto m = RenderApp(App("chart", v1::RENDER_METHOD_HELM));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  EXPECT_TRUE(absl::IsDeadlineExceeded(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("did not finish within 1s"), std::string::npos) << m.status();
}

TEST_F(RendererTest, RenderWritingMoreThanItsBoundIsKilled) {
  // A stand-in helm that writes without end.
  std::string fake = ferry::testing::MakeTempDir("fake-helm") + "/helm";
  std::ofstream(fake) << "#!/bin/sh\nif [ \"$1\" = version ]; then echo v0.0.0-chatty; exit 0; fi\nexec yes\n";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  options_.helm_path = fake;
  options_.max_output_bytes = 1000;
  Write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  absl::Time start = absl::Now();
  auto m = RenderApp(App("chart", v1::RENDER_METHOD_HELM));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("wrote more than 1000 bytes"), std::string::npos) << m.status();
}

// The tools run confined: a helm that allocates past --render-memory-limit-mb
// or spins past --render-cpu-seconds fails the render naming the limit and
// its flag, and one that reaches for the network finds none.
TEST_F(RendererTest, ARenderPastItsMemoryOrCpuLimitFailsNamingTheLimitAndFlag) {
  std::string dir = ferry::testing::MakeTempDir("fake-helm");
  std::string hog = dir + "/helm-hog";
  std::ofstream(hog) << "#!/usr/bin/python3\nimport sys\nif sys.argv[1] == 'version': print('v0.0.0-hog'); sys.exit(0)\n"
                        "b = bytearray(4 << 30)\n";
  std::string spin = dir + "/helm-spin";
  std::ofstream(spin) << "#!/bin/sh\nif [ \"$1\" = version ]; then echo v0.0.0-spin; exit 0; fi\nwhile :; do :; done\n";
  for (const std::string& f : {hog, spin}) std::filesystem::permissions(f, std::filesystem::perms::owner_all);
  Write("chart/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n");
  options_.helm_path = hog;
  options_.memory_limit_mb = 512;
  auto m = RenderApp(App("chart", v1::RENDER_METHOD_HELM));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status())) << m.status();
  EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("the memory limit of 512 MiB (--render-memory-limit-mb)"), std::string::npos)
      << m.status();
  options_.helm_path = spin;
  options_.cpu_seconds = 1;
  absl::Time start = absl::Now();
  m = RenderApp(App("chart", v1::RENDER_METHOD_HELM));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
  EXPECT_NE(m.status().message().find("the CPU limit of 1 s (--render-cpu-seconds)"), std::string::npos) << m.status();
}

// helm and kubectl run with the Go collector off until the heap nears a
// quarter of --render-memory-limit-mb (most of a render's CPU is the tool's
// start-up; bench/blastradius), and on one OS thread.
TEST_F(RendererTest, ToolsRunWithTheGoCollectorDeferredToAQuarterOfTheMemoryLimit) {
  std::string fake = ferry::testing::MakeTempDir("fake-kubectl") + "/kubectl";
  std::ofstream(fake) << "#!/bin/sh\nif [ \"$1\" = version ]; then echo v0.0.0-env; exit 0; fi\n"
                         "printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata: {name: env}\\ndata:\\n"
                         "  gogc: \"%s\"\\n  limit: \"%s\"\\n  procs: \"%s\"\\n' \"$GOGC\" \"$GOMEMLIMIT\" \"$GOMAXPROCS\"\n";
  std::filesystem::permissions(fake, std::filesystem::perms::owner_all);
  options_.kubectl_path = fake;
  Write("apps/web/kustomization.yaml", "resources: []\n");
  for (auto [limit_mb, expected] : {std::pair<uint64_t, const char*>{1024, "256MiB"}, {2048, "512MiB"}, {0, "512MiB"}}) {
    options_.memory_limit_mb = limit_mb;
    auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_KUSTOMIZE));
    ASSERT_TRUE(m.ok()) << m.status();
    ASSERT_EQ(m->size(), 1u);
    json data = json::parse((*m)[0].json())["data"];
    EXPECT_EQ(data["gogc"], "off");
    EXPECT_EQ(data["limit"], expected) << "memory limit " << limit_mb;
    EXPECT_EQ(data["procs"], "1");
  }
}

// RenderBatch gives each application exactly what Render gives it alone:
// overlays of a shared base batched into one kubectl run; one with a
// generator (hashed names) and one with a RoleBinding (a reference
// resolved to a namespace) rendered alone; a batch whose members render the
// same object, or one of which fails, falls back to renders alone with the
// same failure.
TEST_F(RendererTest, ABatchRendersEachApplicationAsItRendersAlone) {
  const std::string log = ferry::testing::MakeTempDir("kubectl-log") + "/runs";
  const std::string wrapper = ferry::testing::MakeTempDir("kubectl-wrap") + "/kubectl";
  std::ofstream(wrapper) << "#!/bin/sh\nif [ \"$1\" = kustomize ]; then echo run >> " << log << "; fi\nexec "
                         << options_.kubectl_path << " \"$@\"\n";
  std::filesystem::permissions(wrapper, std::filesystem::perms::owner_all);
  options_.kubectl_path = wrapper;
  auto runs = [&] {
    std::ifstream in(log);
    int n = 0;
    for (std::string line; std::getline(in, line);) ++n;
    return n;
  };
  Write("bases/web/kustomization.yaml", "resources:\n- deployment.yaml\n- service.yaml\n");
  Write("bases/web/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  annotations: {owner: platform}\nspec:\n"
        "  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
        "    spec:\n      containers:\n      - name: main\n        image: nginx:1.27\n        envFrom:\n"
        "        - configMapRef: {name: settings}\n");
  Write("bases/web/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports:\n  - port: 80\n");
  Write("components/probe/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\npatches:\n- patch: |-\n    apiVersion: apps/v1\n"
        "    kind: Deployment\n    metadata: {name: web}\n    spec:\n      template:\n        metadata:\n"
        "          annotations: {probe: \"on\"}\n");
  Write("apps/a/kustomization.yaml",
        "namespace: a\nresources:\n- ../../bases/web\n- settings.yaml\ncommonLabels: {team: a}\nimages:\n- name: nginx\n"
        "  newTag: \"1.28\"\nreplicas:\n- name: web\n  count: 3\n");
  Write("apps/a/settings.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: {mode: a}\n");
  Write("apps/b/kustomization.yaml",
        "namespace: b\nresources:\n- ../../bases/web\ncommonAnnotations: {contact: b-team}\ncomponents:\n"
        "- ../../components/probe\npatches:\n- path: more.yaml\n");
  Write("apps/b/more.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 5}\n");
  Write("apps/c/kustomization.yaml",
        "namespace: c\nresources:\n- ../../bases/web\nconfigMapGenerator:\n- name: settings\n  literals: [mode=c]\n");
  Write("apps/d/kustomization.yaml", "namespace: d\nresources:\n- ../../bases/web\n- rbac.yaml\n");
  Write("apps/d/rbac.yaml",
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: deployer}\n---\napiVersion: rbac.authorization.k8s.io/v1\n"
        "kind: RoleBinding\nmetadata: {name: deployer}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole,"
        " name: edit}\nsubjects:\n- {kind: ServiceAccount, name: deployer}\n");
  Write("apps/e/kustomization.yaml", "namespace: a\nresources:\n- ../../bases/web\n");  // a's objects again
  Write("apps/f/kustomization.yaml", "namespace: f\nresources:\n- ../../bases/web\n- missing.yaml\n");
  v1::Revision rev = repo_.Commit("repo", "refs/heads/main", testing::LoadTree(dir_));
  Renderer renderer(&repo_, options_);
  std::map<std::string, v1::Application> apps;
  std::map<std::string, RenderInputs> inputs;
  for (const char* id : {"a", "b", "c", "d", "e", "f"}) {
    apps[id] = App(std::string("apps/") + id, v1::RENDER_METHOD_KUSTOMIZE);
    apps[id].set_id(id);
    absl::StatusOr<RenderInputs> in = renderer.CollectInputs(apps[id], rev.sha());
    ASSERT_TRUE(in.ok()) << in.status();
    inputs[id] = *in;
  }
  auto text = [](const absl::StatusOr<std::vector<v1::Manifest>>& r) {
    if (!r.ok())  // (payloads compared as the plan failure: their order in ToString is unspecified)
      return absl::StrCat(r.status().code(), " ", r.status().message(), " ", ToPlanFailure(r.status()).ShortDebugString());
    std::string out;
    for (const auto& m : r.value()) out += m.ShortDebugString() + "\n";
    return out;
  };
  auto check = [&](std::vector<std::string> ids, int expected_runs) {
    std::vector<Renderer::BatchItem> items;
    for (const auto& id : ids) items.push_back({&apps[id], &inputs[id]});
    const int before = runs();
    auto batch = renderer.RenderBatch(items, rev.sha());
    EXPECT_EQ(runs() - before, expected_runs) << "kubectl runs for " << absl::StrJoin(ids, ",");
    ASSERT_EQ(batch.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      auto alone = renderer.Render(apps[ids[i]], rev.sha(), inputs[ids[i]]);
      EXPECT_EQ(text(batch[i]), text(alone)) << ids[i];
    }
  };
  // a, b and d in one run; c alone (generator); d again alone (RoleBinding).
  check({"a", "b", "c", "d"}, 3);
  // a and e render the same Deployment: the run fails, each renders alone.
  check({"a", "e"}, 3);
  // f fails alone as it fails in a batch; b is unaffected.
  check({"f", "b"}, 3);
  // The objects are the application's own, from its kustomization file.
  auto a = renderer.RenderBatch({{&apps["a"], &inputs["a"]}, {&apps["b"], &inputs["b"]}}, rev.sha());
  ASSERT_TRUE(a[0].ok()) << a[0].status();
  ASSERT_EQ(a[0]->size(), 3u);
  for (const auto& m : *a[0]) {
    EXPECT_EQ(m.object().namespace_(), "a");
    EXPECT_EQ(m.source_path(), "apps/a/kustomization.yaml");
    EXPECT_EQ(m.json().find(kBatchMemberAnnotation), std::string::npos) << m.json();
  }
  EXPECT_FALSE(a[1]->empty());
  EXPECT_EQ(a[1]->front().object().namespace_(), "b");
}

TEST_F(RendererTest, TheSandboxStatusNamesTheLimitsAndTheNetwork) {
  Renderer renderer(&repo_, options_);
  std::string status = renderer.SandboxStatus();
  EXPECT_NE(status.find("memory 1024 MiB"), std::string::npos) << status;
  EXPECT_NE(status.find("CPU 60 s"), std::string::npos) << status;
  EXPECT_NE(status.find(process::NetworkIsolationAvailable().ok() ? "no network" : "network NOT isolated"),
            std::string::npos)
      << status;
}

TEST_F(RendererTest, SymlinkEscapingTheRepositoryFails) {
  Write("apps/web/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  std::filesystem::create_symlink("../../../etc/passwd", std::filesystem::path(dir_) / "apps/web/secret.yaml");
  auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_PLAIN));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status()));
  EXPECT_NE(m.status().message().find("path escapes the repository: symlink apps/web/secret.yaml"), std::string::npos)
      << m.status();
}

TEST_F(RendererTest, TerraformRendersTheFolderAsOneStackAndAFolderWithoutTfFilesFails) {
  Write("apps/infra/main.tf", "resource \"terraform_data\" \"x\" {}\n");
  Write("apps/infra/modules/net/main.tf", "variable \"cidr\" {}\n");
  Write("apps/other/main.tf", "not mine\n");
  auto m = RenderApp(App("apps/infra", v1::RENDER_METHOD_TERRAFORM));
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  EXPECT_EQ((*m)[0].object().group(), "terraform.ferry.dev");
  EXPECT_EQ((*m)[0].object().kind(), "Stack");
  EXPECT_EQ((*m)[0].object().name(), "web");
  EXPECT_NE((*m)[0].json().find("modules/net/main.tf"), std::string::npos) << (*m)[0].json();
  EXPECT_EQ((*m)[0].json().find("not mine"), std::string::npos) << (*m)[0].json();

  Write("apps/empty/README.md", "no terraform here\n");
  auto none = RenderApp(App("apps/empty", v1::RENDER_METHOD_TERRAFORM));
  ASSERT_FALSE(none.ok());
  ASSERT_TRUE(IsRenderFailure(none.status())) << none.status();
  EXPECT_NE(none.status().message().find("render terraform needs a folder with .tf"), std::string::npos)
      << none.status();
}

TEST_F(RendererTest, UnknownRenderMethodFails) {
  Write("apps/web/ok.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  auto m = RenderApp(App("apps/web", static_cast<v1::RenderMethod>(9)));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status()));
  EXPECT_NE(m.status().message().find("unknown render method 9"), std::string::npos);
}

TEST_F(RendererTest, ToolOutputIsReadWithinTheApplicationsBudget) {
  // kubectl kustomize's output is one stream: the objects of the whole
  // application count against --max-objects-per-app.
  Write("apps/web/kustomization.yaml", "resources: [a.yaml, b.yaml, c.yaml]\n");
  for (const char* name : {"a", "b", "c"})
    Write(std::string("apps/web/") + name + ".yaml",
          std::string("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ") + name + "}\n");
  options_.parse_limits.max_objects = 2;
  auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_KUSTOMIZE));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status()));
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(m.status().message().find("apps/web/kustomization.yaml:"), std::string::npos) << m.status();
  EXPECT_NE(m.status().message().find("more than 2 objects (limit --max-objects-per-app)"), std::string::npos)
      << m.status();
  options_.parse_limits.max_objects = 3;
  EXPECT_TRUE(RenderApp(App("apps/web", v1::RENDER_METHOD_KUSTOMIZE)).ok());
}

TEST_F(RendererTest, AKustomizationOfNestedAliasesIsRefusedBeforeItsWalk) {
  std::string k = "x0: &x0 [a.yaml, a.yaml, a.yaml, a.yaml, a.yaml, a.yaml, a.yaml, a.yaml, a.yaml, a.yaml]\n";
  for (int i = 1; i < 7; ++i) {
    k += "x" + std::to_string(i) + ": &x" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j) k += std::string(j ? ", " : "") + "*x" + std::to_string(i - 1);
    k += "]\n";
  }
  Write("apps/web/kustomization.yaml", k + "resources: *x6\n");
  Write("apps/web/a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n");
  auto m = RenderApp(App("apps/web", v1::RENDER_METHOD_KUSTOMIZE));
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status()));
  EXPECT_NE(m.status().message().find(
                "apps/web/kustomization.yaml:6: more than 1000000 YAML nodes after alias expansion (limit --max-yaml-nodes)"),
            std::string::npos)
      << m.status();
}

TEST_F(RendererTest, AToolsOutputOfMoreDocumentsThanAFileMayHoldIsBoundedByTheObjectsLimit) {
  // helm writes one document per object: 2,000 objects pass the default
  // 1,000 documents per file, since the output is the whole application.
  Write("charts/many/Chart.yaml", "apiVersion: v2\nname: many\nversion: 0.1.0\n");
  Write("charts/many/templates/cms.yaml",
        "{{- range $i := until 2000 }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{{ $i }}\n"
        "{{- end }}\n");
  auto m = RenderApp(App("charts/many", v1::RENDER_METHOD_HELM));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size(), 2000u);
  options_.parse_limits.max_objects = 1500;
  auto refused = RenderApp(App("charts/many", v1::RENDER_METHOD_HELM));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("(limit --max-objects-per-app)"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace ferry::planner
