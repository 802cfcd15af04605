// The rules of rendering Kustomize applications together
// (services/planner/kustomize_batch.h); renderer_test checks that batched
// renders equal renders alone with the real kubectl.
#include "services/planner/kustomize_batch.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace ferry::planner {
namespace {

using nlohmann::json;

TreeEntry File(const std::string& path, const std::string& data) {
  TreeEntry e;
  e.path = path;
  e.data = data;
  return e;
}

std::string Obstacle(const std::vector<TreeEntry>& files) { return BatchObstacle(files, ParseLimits()); }

TEST(KustomizeBatchTest, AnOverlayOfASharedBaseWithLocalTransformsMayBeBatched) {
  EXPECT_EQ(Obstacle({File("apps/a/kustomization.yaml",
                           "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: a\n"
                           "resources:\n- ../../bases/web\n- cm.yaml\ncommonLabels: {team: a}\nlabels:\n- pairs: {x: y}\n"
                           "commonAnnotations: {note: n}\nimages:\n- name: nginx\n  newTag: '1.28'\n"
                           "replicas:\n- name: web\n  count: 2\ncomponents:\n- ../../components/probe\n"
                           "patches:\n- path: patch.yaml\n- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n"
                           "    metadata: {name: web}\n    spec: {replicas: 3}\n  target: {kind: Deployment}\n"
                           "patchesStrategicMerge:\n- smp.yaml\n"),
                      File("apps/a/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
                      File("apps/a/patch.yaml", "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"),
                      File("apps/a/smp.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"),
                      File("bases/web/kustomization.yaml", "resources:\n- deployment.yaml\n"),
                      File("bases/web/deployment.yaml", "kind: Deployment\n"),
                      File("components/probe/kustomization.yaml", "kind: Component\napiVersion: v1alpha1\n")}),
            "");
}

// Each of these renames objects, resolves references over the whole run,
// or is honoured only at the root of a build.
TEST(KustomizeBatchTest, FieldsThatActAcrossTheWholeRunKeepAnApplicationAlone) {
  for (const char* field : {"namePrefix: x-", "nameSuffix: -x", "configMapGenerator:\n- name: c\n  literals: [a=b]",
                            "secretGenerator:\n- name: s\n  literals: [a=b]", "generatorOptions: {disableNameSuffixHash: true}",
                            "vars: []", "replacements: []", "crds: [crd.json]", "configurations: [c.yaml]",
                            "openapi: {path: s.json}", "transformers: [t.yaml]", "generators: [g.yaml]",
                            "validators: [v.yaml]", "helmCharts: []", "buildMetadata: [originAnnotations]",
                            "sortOptions: {order: legacy}", "patchesJson6902: []", "unknownField: 1"}) {
    std::string o = Obstacle({File("apps/a/kustomization.yaml", std::string("resources: []\n") + field + "\n")});
    EXPECT_NE(o, "") << field;
    EXPECT_NE(o.find("apps/a/kustomization.yaml: uses"), std::string::npos) << o;
  }
  // In a base the application includes, too.
  EXPECT_NE(Obstacle({File("apps/a/kustomization.yaml", "resources: [../../bases/web]\n"),
                      File("bases/web/kustomization.yaml", "namePrefix: shared-\n")}),
            "");
}

TEST(KustomizeBatchTest, PatchesThatCouldRenameKeepAnApplicationAlone) {
  auto with = [](const std::string& kustomization, std::vector<TreeEntry> more = {}) {
    more.push_back(File("apps/a/kustomization.yaml", kustomization));
    return Obstacle(more);
  };
  // JSON 6902, inline or in a file (also when listed as strategic merge).
  EXPECT_NE(with("patches:\n- patch: '[{\"op\": \"replace\", \"path\": \"/metadata/name\", \"value\": \"b\"}]'\n"
                 "  target: {kind: Deployment}\n"),
            "");
  EXPECT_NE(with("patches:\n- path: p.yaml\n", {File("apps/a/p.yaml", "- op: replace\n  path: /metadata/name\n")}), "");
  EXPECT_NE(with("patchesStrategicMerge:\n- p.yaml\n", {File("apps/a/p.yaml", "- op: remove\n  path: /spec\n")}), "");
  // allowNameChange, and any other option.
  EXPECT_NE(with("patches:\n- path: p.yaml\n  options: {allowNameChange: true}\n",
                 {File("apps/a/p.yaml", "kind: Deployment\nmetadata: {name: x}\n")}),
            "");
  // Several documents, a file the inputs lack, a patch without text.
  EXPECT_NE(with("patches:\n- path: p.yaml\n",
                 {File("apps/a/p.yaml", "kind: Deployment\nmetadata: {name: x}\n---\nkind: Service\nmetadata: {name: y}\n")}),
            "");
  EXPECT_NE(with("patches:\n- path: gone.yaml\n"), "");
  EXPECT_NE(with("patches:\n- target: {kind: Deployment}\n"), "");
  // A file that names the batch annotation (it would be removed).
  EXPECT_NE(with("resources: [cm.yaml]\n",
                 {File("apps/a/cm.yaml", std::string("metadata:\n  annotations: {") + kBatchMemberAnnotation + ": x}\n")}),
            "");
  // Malformed YAML: the render alone reports it.
  EXPECT_NE(with("resources: [\n"), "");
}

TEST(KustomizeBatchTest, ReferencesResolvedToANamespaceKeepAnApplicationAlone) {
  auto ref = [](const std::string& group, const std::string& kind) {
    v1::ObjectRef r;
    r.set_group(group);
    r.set_kind(kind);
    return r;
  };
  EXPECT_TRUE(MapReferrer(ref("rbac.authorization.k8s.io", "RoleBinding")));
  EXPECT_TRUE(MapReferrer(ref("rbac.authorization.k8s.io", "ClusterRoleBinding")));
  EXPECT_TRUE(MapReferrer(ref("admissionregistration.k8s.io", "ValidatingWebhookConfiguration")));
  EXPECT_TRUE(MapReferrer(ref("admissionregistration.k8s.io", "MutatingWebhookConfiguration")));
  EXPECT_TRUE(MapReferrer(ref("", "Node")));
  EXPECT_FALSE(MapReferrer(ref("apps", "Deployment")));
  EXPECT_FALSE(MapReferrer(ref("rbac.authorization.k8s.io", "Role")));
  EXPECT_FALSE(MapReferrer(ref("", "ServiceAccount")));
}

TEST(KustomizeBatchTest, TheBatchWrapsEachMemberWithItsNumber) {
  auto files = BatchKustomizations({"apps/a", ""}, "../../repo");
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].first, "m0/kustomization.yaml");
  EXPECT_NE(files[0].second.find("- \"../../repo/apps/a\"\n"), std::string::npos) << files[0].second;
  EXPECT_NE(files[0].second.find(std::string(kBatchMemberAnnotation) + ": \"0\""), std::string::npos);
  EXPECT_NE(files[0].second.find("- path: metadata/annotations\n"), std::string::npos);
  EXPECT_NE(files[1].second.find("- \"../../repo\"\n"), std::string::npos) << files[1].second;
  EXPECT_NE(files[1].second.find(std::string(kBatchMemberAnnotation) + ": \"1\""), std::string::npos);
  EXPECT_EQ(files[2], (std::pair<std::string, std::string>{"kustomization.yaml", "resources:\n- m0\n- m1\n"}));
}

TEST(KustomizeBatchTest, OutputSplitsByMemberWithoutTheAnnotation) {
  auto manifest = [](const std::string& name, json annotations) {
    v1::Manifest m;
    m.mutable_object()->set_kind("ConfigMap");
    m.mutable_object()->set_name(name);
    json o = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}};
    if (!annotations.is_null()) o["metadata"]["annotations"] = annotations;
    m.set_json(o.dump());
    return m;
  };
  auto split = SplitBatchOutput({manifest("a", {{kBatchMemberAnnotation, "1"}}),
                                 manifest("b", {{kBatchMemberAnnotation, "0"}, {"keep", "me"}})},
                                2);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ((*split)[0].size(), 1u);
  ASSERT_EQ((*split)[1].size(), 1u);
  EXPECT_EQ((*split)[0][0].json(), R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"annotations":{"keep":"me"},"name":"b"}})");
  // Emptied: gone, as kustomize drops an empty annotations map itself.
  EXPECT_EQ((*split)[1][0].json(), R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"}})");
  EXPECT_FALSE(SplitBatchOutput({manifest("c", nullptr)}, 2).ok());
  EXPECT_FALSE(SplitBatchOutput({manifest("c", {{kBatchMemberAnnotation, "2"}})}, 2).ok());
  EXPECT_FALSE(SplitBatchOutput({manifest("c", {{kBatchMemberAnnotation, "-1"}})}, 2).ok());
}

}  // namespace
}  // namespace ferry::planner
