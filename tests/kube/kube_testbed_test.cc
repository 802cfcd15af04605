// The Kubernetes test bed is the real thing: the `kube` fixture's
// kube-apiserver (scripts/install-kube-testbed) answers as a cluster's does.
// Server-side apply with field ownership and conflicts, the server's own
// defaulting and validation, the status subresource (how tests play the
// controllers' part), CRDs becoming Established, ServiceAccount tokens and
// RBAC. Driven with kubectl, as a user would.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/kube_fixture.h"

namespace ferry::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string MustKubectl(const std::string& args, const std::string& stdin_text = "") {
  std::string out;
  int rc = Kubectl(args, &out, stdin_text);
  EXPECT_EQ(rc, 0) << "kubectl " << args << ":\n" << out;
  return out;
}

std::string ConfigMap(const std::string& ns, const std::string& value) {
  return absl::StrCat("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ", ns,
                      "\ndata:\n  mode: ", value, "\n");
}

std::string Deployment(const std::string& ns, const std::string& selector_app = "web") {
  return absl::StrCat(R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: )",
                      ns, R"(
spec:
  replicas: 2
  selector:
    matchLabels:
      app: )",
                      selector_app, R"(
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: registry.invalid/web:1
)");
}

TEST(KubeTestbed, IsTheBuiltReleaseWithTheFixturesKubeconfig) {
  const KubeFixture& kube = TestKube();
  EXPECT_THAT(kube.server, ::testing::StartsWith("https://127.0.0.1:"));
  std::string version = MustKubectl("version -o json");
  EXPECT_THAT(version, HasSubstr("\"gitVersion\": \"v1.37.2\"")) << version;
  std::string resources = MustKubectl("api-resources -o name");
  for (const char* want : {"deployments.apps", "customresourcedefinitions.apiextensions.k8s.io",
                           "roles.rbac.authorization.k8s.io", "leases.coordination.k8s.io"}) {
    EXPECT_THAT(resources, HasSubstr(want));
  }
}

TEST(KubeTestbed, ServerSideApplyOwnsFieldsAndReportsConflicts) {
  TestNamespace ns;
  MustKubectl("apply --server-side --field-manager=ferry -f -", ConfigMap(ns.name(), "blue"));
  std::string managers =
      MustKubectl(absl::StrCat("get configmap settings -n ", ns.name(),
                       " --show-managed-fields -o jsonpath='{range .metadata.managedFields[*]}{.manager}/{.operation} {end}'"));
  EXPECT_THAT(managers, HasSubstr("ferry/Apply"));

  // Another manager setting the same field: the server refuses, naming ferry.
  std::string out;
  EXPECT_NE(Kubectl("apply --server-side --field-manager=someone-else -f -", &out, ConfigMap(ns.name(), "green")), 0);
  EXPECT_THAT(out, HasSubstr("conflict"));
  EXPECT_THAT(out, HasSubstr("ferry"));
  EXPECT_EQ(MustKubectl(absl::StrCat("get configmap settings -n ", ns.name(), " -o jsonpath={.data.mode}")), "blue");

  // Forced, the field changes owner.
  MustKubectl("apply --server-side --field-manager=someone-else --force-conflicts -f -", ConfigMap(ns.name(), "green"));
  EXPECT_EQ(MustKubectl(absl::StrCat("get configmap settings -n ", ns.name(), " -o jsonpath={.data.mode}")), "green");
}

TEST(KubeTestbed, DeploymentIsDefaultedAndValidatedByTheServer) {
  TestNamespace ns;
  MustKubectl("apply --server-side --field-manager=ferry -f -", Deployment(ns.name()));
  // Defaults the manifest never set, filled in by the server.
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(), " -o jsonpath={.spec.strategy.type}")),
            "RollingUpdate");
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(), " -o jsonpath={.spec.revisionHistoryLimit}")),
            "10");
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(),
                             " -o jsonpath={.spec.template.spec.containers[0].terminationMessagePath}")),
            "/dev/termination-log");
  // A dry-run apply of the same manifest changes nothing (defaults are not a diff).
  std::string diff_out;
  EXPECT_EQ(Kubectl("diff --server-side --field-manager=ferry -f -", &diff_out, Deployment(ns.name())), 0) << diff_out;

  // The apps/v1 validation: a selector that does not match the template.
  std::string out;
  std::string bad = Deployment(ns.name(), "other");
  bad.replace(bad.find("name: web"), 9, "name: bad");
  EXPECT_NE(Kubectl("apply --server-side --field-manager=ferry -f -", &out, bad), 0);
  EXPECT_THAT(out, HasSubstr("selector` does not match template `labels`"));
}

TEST(KubeTestbed, TestsWriteAControllersStatusThroughTheSubresource) {
  TestNamespace ns;
  MustKubectl("apply --server-side --field-manager=ferry -f -", Deployment(ns.name()));
  // No controller runs: nothing ever writes the status unless the test does.
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(), " -o jsonpath={.status.availableReplicas}")), "");

  MustKubectl(absl::StrCat("patch deployment web -n ", ns.name(),
                   " --subresource=status --type=merge -p "
                   "'{\"status\":{\"observedGeneration\":1,\"replicas\":2,\"updatedReplicas\":2,"
                   "\"readyReplicas\":2,\"availableReplicas\":2,\"conditions\":[{\"type\":\"Available\","
                   "\"status\":\"True\",\"reason\":\"MinimumReplicasAvailable\"}]}}'"));
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(), " -o jsonpath={.status.availableReplicas}")), "2");
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(),
                             " -o jsonpath='{.status.conditions[?(@.type==\"Available\")].status}'")),
            "True");

  // The main resource ignores status, as on a cluster.
  MustKubectl(absl::StrCat("patch deployment web -n ", ns.name(), " --type=merge -p '{\"status\":{\"availableReplicas\":0}}'"));
  EXPECT_EQ(MustKubectl(absl::StrCat("get deployment web -n ", ns.name(), " -o jsonpath={.status.availableReplicas}")), "2");
}

TEST(KubeTestbed, CustomResourceDefinitionBecomesEstablishedWithoutAControllerManager) {
  // The apiextensions server inside kube-apiserver sets NamesAccepted and
  // Established itself; no kube-controller-manager runs here.
  std::string suffix = absl::StrCat(getpid());
  std::string group = absl::StrCat("t", suffix, ".ferry.test");
  MustKubectl("apply --server-side --field-manager=ferry -f -", absl::StrCat(R"(apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.)",
                                                                  group, R"(
spec:
  group: )",
                                                                  group, R"(
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer, minimum: 1}
)"));
  MustKubectl(absl::StrCat("wait --for=condition=Established --timeout=30s crd/widgets.", group));
  TestNamespace ns;
  std::string widget = absl::StrCat("apiVersion: ", group, "/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: ",
                                    ns.name(), "\nspec:\n  size: 3\n");
  MustKubectl("apply --server-side --field-manager=ferry -f -", widget);
  EXPECT_EQ(MustKubectl(absl::StrCat("get widgets.", group, " w -n ", ns.name(), " -o jsonpath={.spec.size}")), "3");
  // The CRD's schema is enforced.
  std::string out;
  std::string bad = widget;
  bad.replace(bad.find("size: 3"), 7, "size: 0");
  EXPECT_NE(Kubectl("apply --server-side --field-manager=ferry -f -", &out, bad), 0);
  EXPECT_THAT(out, HasSubstr("spec.size"));
  MustKubectl(absl::StrCat("delete crd widgets.", group, " --wait=false"));
}

TEST(KubeTestbed, ServiceAccountsGetTokensAndRbacDecides) {
  TestNamespace ns;
  MustKubectl(absl::StrCat("create serviceaccount robot -n ", ns.name()));
  std::string sa = absl::StrCat("system:serviceaccount:", ns.name(), ":robot");
  std::string out;
  // Denied until a Role grants it (auth can-i exits 1 on "no").
  EXPECT_EQ(Kubectl(absl::StrCat("auth can-i list configmaps -n ", ns.name(), " --as=", sa), &out), 1) << out;
  MustKubectl(absl::StrCat("create role cm-reader --verb=get,list --resource=configmaps -n ", ns.name()));
  MustKubectl(absl::StrCat("create rolebinding cm-reader --role=cm-reader --serviceaccount=", ns.name(), ":robot -n ",
                   ns.name()));
  EXPECT_EQ(Kubectl(absl::StrCat("auth can-i list configmaps -n ", ns.name(), " --as=", sa), &out), 0) << out;
  EXPECT_EQ(Kubectl(absl::StrCat("auth can-i delete configmaps -n ", ns.name(), " --as=", sa), &out), 1) << out;
  EXPECT_EQ(Kubectl(absl::StrCat("auth can-i list configmaps -n default --as=", sa), &out), 1) << out;

  // A signed token for it, accepted by the server as that account.
  std::string token = MustKubectl(absl::StrCat("create token robot -n ", ns.name(), " --duration=10m"));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  ASSERT_THAT(token, Not(::testing::IsEmpty()));
  const KubeFixture& kube = TestKube();
  std::string config = absl::StrCat(::testing::TempDir(), "/robot-", getpid(), ".kubeconfig");
  {
    std::ofstream f(config);
    f << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: " << kube.server
      << "\n    certificate-authority: " << kube.ca_file << "\nusers:\n- name: robot\n  user:\n    token: " << token
      << "\ncontexts:\n- name: robot\n  context: {cluster: c, user: robot}\ncurrent-context: robot\n";
  }
  EXPECT_EQ(KubectlWith(config, "auth whoami -o jsonpath={.status.userInfo.username}", &out), 0) << out;
  EXPECT_EQ(out, sa);
  EXPECT_EQ(KubectlWith(config, absl::StrCat("get configmaps -n ", ns.name()), &out), 0) << out;
  EXPECT_NE(KubectlWith(config, "get configmaps -n default", &out), 0);
  EXPECT_THAT(out, HasSubstr("forbidden"));
  std::filesystem::remove(config);
}

}  // namespace
}  // namespace ferry::testing
