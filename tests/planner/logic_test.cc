// Unit tests of the planner's pure logic: paths, manifest parsing, diffs,
// sync windows, validation and ferry.yaml parsing.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"
#include "services/planner/declarative_config.h"
#include "services/planner/differ.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/plan_view.h"
#include "services/planner/render_failure.h"
#include "services/planner/repo_path.h"
#include "services/planner/sync_window.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

TEST(RepoPathTest, NormalisesAndRefusesEscapes) {
  EXPECT_EQ(*NormalizeRepoPath("./apps/web/", "path"), "apps/web");
  EXPECT_EQ(*NormalizeRepoPath("", "path"), "");
  absl::StatusOr<std::string> bad = NormalizeRepoPath("apps/../../etc", "application.path");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_NE(bad.status().message().find("application.path"), std::string::npos);
  EXPECT_FALSE(NormalizeRepoPath("/etc", "path").ok());
  EXPECT_EQ(*ResolveRepoPath("overlays/prod", "../../base"), "base");
  EXPECT_FALSE(ResolveRepoPath("apps", "../../x").ok());
  EXPECT_TRUE(IsUnderRepoPath("apps/web/a.yaml", "apps/web"));
  EXPECT_FALSE(IsUnderRepoPath("apps/webx/a.yaml", "apps/web"));
  EXPECT_EQ(FullRefName("main"), "refs/heads/main");
}

// Found by fuzz/path_checks_fuzzer.cc: the folder is not always Ferry's own
// (a helm "# Source:" comment in Git names a manifest's file), and its ".."
// components escaped unchecked.
TEST(RepoPathTest, ResolveRefusesAFolderThatEscapes) {
  EXPECT_FALSE(ResolveRepoPath("../../etc", "passwd").ok());
  EXPECT_EQ(*ResolveRepoPath("a~../../b", "x"), "b/x");  // was "a~../../b/x"
  EXPECT_FALSE(ResolveRepoPath("a/../..", "b").ok());
  EXPECT_EQ(*ResolveRepoPath("a/./b/../c", "d"), "a/c/d");
}

TEST(ManifestParserTest, ParsesMultiDocumentYamlWithTypesAndWaves) {
  auto m = ParseManifests(R"(apiVersion: ferry.dev/v1
kind: Process
metadata:
  name: web
  annotations:
    ferry.dev/sync-wave: "2"
spec:
  port: 8080
  enabled: true
  version: "1.10"
---
# comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: prod}
data: {a: "1"}
)",
                          "apps/web/all.yaml");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].object().group(), "ferry.dev");
  EXPECT_EQ((*m)[0].object().kind(), "Process");
  EXPECT_EQ((*m)[0].wave(), 2);
  json spec = json::parse((*m)[0].json())["spec"];
  EXPECT_EQ(spec["port"], 8080);
  EXPECT_EQ(spec["enabled"], true);
  EXPECT_EQ(spec["version"], "1.10");
  EXPECT_EQ((*m)[1].object().group(), "");
  EXPECT_EQ((*m)[1].object().namespace_(), "prod");
}

TEST(ManifestParserTest, MalformedYamlNamesFileAndLine) {
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\napiVersion: v1\nkind: [unclosed\n", "apps/x/bad.yaml");
  ASSERT_FALSE(m.ok());
  ASSERT_TRUE(IsRenderFailure(m.status()));
  v1::PlanFailure f = ToPlanFailure(m.status());
  EXPECT_EQ(f.path(), "apps/x/bad.yaml");
  EXPECT_GE(f.line(), 5);
  EXPECT_NE(f.message().find("malformed YAML"), std::string::npos) << f.message();
}

TEST(ManifestParserTest, InvalidUtf8InAValueIsARenderFailureNotACrash) {
  // yaml-cpp passes the bytes through; JSON text cannot hold them.
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: \"\xff\xfe\"}\n",
                          "apps/x/bad.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("apps/x/bad.yaml"), std::string::npos) << m.status();
  EXPECT_NE(m.status().message().find("ConfigMap a"), std::string::npos) << m.status();
}

TEST(ManifestParserTest, ScalarsOfAHundredThousandDigitsParseWithoutCrashing) {
  // Scalars come from Git unbounded: typing them must neither recurse per
  // character nor throw on a number out of range. Too big for an integer,
  // they stay strings.
  const std::string digits(100000, '7');
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  int: " + digits +
                              "\n  hex: 0x" + digits + "\n  oct: 0o" + digits + "\n  float: 1." + digits + "\n",
                          "apps/x/big.yaml");
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(m->size(), 1u);
  json data = json::parse((*m)[0].json())["data"];
  EXPECT_EQ(data["int"], digits);
  EXPECT_EQ(data["hex"], "0x" + digits);
  EXPECT_EQ(data["oct"], "0o" + digits);
  EXPECT_TRUE(data["float"].is_number_float());
}

TEST(ManifestParserTest, MissingNameIsNamed) {
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "a.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("metadata.name"), std::string::npos);
}

TEST(ManifestParserTest, DuplicateIdentityIsRejected) {
  auto a = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", "a.yaml");
  auto b = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {}\n", "b.yaml");
  std::vector<v1::Manifest> all = *a;
  all.push_back((*b)[0]);
  absl::Status s = CheckAndSortManifests(all);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("duplicate object ConfigMap x in a.yaml and b.yaml"), std::string::npos) << s;
}

v1::Manifest Obj(const std::string& name, json spec, int wave = 0) {
  json o = {{"apiVersion", "ferry.dev/v1"}, {"kind", "Process"}, {"metadata", {{"name", name}}}, {"spec", spec}};
  auto m = ParseManifests(o.dump(), "x.yaml");
  (*m)[0].set_wave(wave);
  return (*m)[0];
}

v1::LiveObject Live(const v1::Manifest& m, json live, json applied) {
  v1::LiveObject l;
  *l.mutable_object() = m.object();
  l.set_live_json(live.dump());
  if (!applied.is_null()) l.set_applied_json(applied.dump());
  return l;
}

TEST(DifferTest, NothingDiffersWhenOnlyServerManagedAndDefaultedFieldsDiffer) {
  v1::Manifest want = Obj("web", {{"cmd", "run"}});
  json live = json::parse(want.json());
  live["status"] = {{"pid", 42}};
  live["metadata"]["uid"] = "abc";
  live["metadata"]["resourceVersion"] = "7";
  live["spec"]["restartPolicy"] = "Always";  // defaulted by the target
  auto actions = DiffObjects({want}, {Live(want, live, json::parse(want.json()))}, {});
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].action(), v1::OBJECT_ACTION_NOOP);
  EXPECT_FALSE(HasChanges(actions));
}

TEST(DifferTest, FieldsTheTargetDoesNotReportAreNotDifferencesUnlessChanged) {
  // The target reports spec and name only; annotations and spec.reload are
  // known from the last applied object.
  json applied = {{"apiVersion", "ferry.dev/v1"},
                  {"kind", "Process"},
                  {"metadata", {{"name", "web"}, {"annotations", {{"ferry.dev/sync-wave", "1"}}}}},
                  {"spec", {{"cmd", "run"}, {"reload", "SIGHUP"}}}};
  json live = {{"apiVersion", "ferry.dev/v1"}, {"kind", "Process"}, {"metadata", {{"name", "web"}}},
               {"spec", {{"cmd", "run"}}}};
  auto desired = ParseManifests(applied.dump(), "x.yaml");
  auto same = DiffObjects(*desired, {Live((*desired)[0], live, applied)}, {});
  EXPECT_EQ(same[0].action(), v1::OBJECT_ACTION_NOOP) << same[0].unified_diff();
  json changed = applied;
  changed["spec"]["reload"] = "SIGUSR1";
  auto desired2 = ParseManifests(changed.dump(), "x.yaml");
  auto diff = DiffObjects(*desired2, {Live((*desired2)[0], live, applied)}, {});
  EXPECT_EQ(diff[0].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_NE(diff[0].json_patch().find("/spec/reload"), std::string::npos) << diff[0].json_patch();
}

TEST(DifferTest, WhatTheDeployerResolvedForASecretIsNotADifferenceButAResealedFileIs) {
  json ref = {{"encryptedFile", "db.sealed"}, {"sourceDigest", "sha256:aaaa"}};
  json env = json::array({{{"name", "DB"}, {"valueFrom", {{"secretRef", ref}}}}});
  v1::Manifest want = Obj("web", {{"cmd", "run"}, {"env", env}});
  // As the deployer records and reports it: the file's bytes and the keyed
  // digest of the value besides what Git says.
  json applied = json::parse(want.json());
  applied["spec"]["env"][0]["valueFrom"]["secretRef"]["ciphertext"] = "ZmVycnktc2VhbGVkL3YxOg==";
  applied["spec"]["env"][0]["valueFrom"]["secretRef"]["valueDigest"] = "hmac-sha256:1111";
  auto same = DiffObjects({want}, {Live(want, applied, applied)}, {});
  EXPECT_EQ(same[0].action(), v1::OBJECT_ACTION_NOOP) << same[0].unified_diff();
  // Re-sealed in Git: the plan shows the digest of the new file, no value.
  json resealed = env;
  resealed[0]["valueFrom"]["secretRef"]["sourceDigest"] = "sha256:bbbb";
  v1::Manifest want2 = Obj("web", {{"cmd", "run"}, {"env", resealed}});
  auto diff = DiffObjects({want2}, {Live(want2, applied, applied)}, {});
  ASSERT_EQ(diff[0].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_NE(diff[0].unified_diff().find("\"sourceDigest\": \"sha256:bbbb\""), std::string::npos)
      << diff[0].unified_diff();
  EXPECT_EQ(diff[0].unified_diff().find("ciphertext"), std::string::npos) << diff[0].unified_diff();
  EXPECT_EQ(diff[0].unified_diff().find("valueDigest"), std::string::npos) << diff[0].unified_diff();
}

TEST(DifferTest, UpdateCarriesJsonPatchAndUnifiedDiff) {
  v1::Manifest want = Obj("web", {{"cmd", "run --fast"}});
  json live = json::parse(Obj("web", {{"cmd", "run"}}).json());
  auto actions = DiffObjects({want}, {Live(want, live, live)}, {});
  ASSERT_EQ(actions[0].action(), v1::OBJECT_ACTION_UPDATE);
  json patch = json::parse(actions[0].json_patch());
  EXPECT_EQ(patch[0]["op"], "replace");
  EXPECT_EQ(patch[0]["path"], "/spec/cmd");
  EXPECT_NE(actions[0].unified_diff().find("-    \"cmd\": \"run\""), std::string::npos) << actions[0].unified_diff();
  EXPECT_NE(actions[0].unified_diff().find("+    \"cmd\": \"run --fast\""), std::string::npos);
  EXPECT_NE(actions[0].unified_diff().find("@@ -"), std::string::npos);
}

TEST(DifferTest, IgnoreDifferencesHidesMatchingPointersOnly) {
  v1::Manifest want = Obj("web", {{"replicas", 1}, {"cmd", "run"}});
  json live = json::parse(want.json());
  live["spec"]["replicas"] = 5;  // scaled on the target
  DiffOptions options;
  v1::IgnoreDifference rule;
  rule.set_kind("Process");
  rule.add_json_pointers("/spec/replicas");
  options.ignore.push_back(rule);
  EXPECT_EQ(DiffObjects({want}, {Live(want, live, json::parse(want.json()))}, options)[0].action(),
            v1::OBJECT_ACTION_NOOP);
  EXPECT_EQ(DiffObjects({want}, {Live(want, live, json::parse(want.json()))}, {})[0].action(),
            v1::OBJECT_ACTION_UPDATE);
  rule.set_name("other");  // selector no longer matches
  options.ignore = {rule};
  EXPECT_EQ(DiffObjects({want}, {Live(want, live, json::parse(want.json()))}, options)[0].action(),
            v1::OBJECT_ACTION_UPDATE);
}

TEST(DifferTest, OrdersByWaveThenIdentityAndPrunesLast) {
  v1::Manifest a = Obj("a", {{"x", 1}}, 5);
  v1::Manifest b = Obj("b", {{"x", 1}}, -1);
  v1::Manifest c = Obj("c", {{"x", 1}}, 0);
  v1::Manifest gone = Obj("gone", {{"x", 1}}, 9);
  v1::LiveObject gone_live = Live(gone, json::parse(gone.json()), json::parse(gone.json()));
  DiffOptions options;
  options.prune = true;
  auto actions = DiffObjects({a, b, c}, {gone_live}, options);
  ASSERT_EQ(actions.size(), 4u);
  EXPECT_EQ(actions[0].object().name(), "b");
  EXPECT_EQ(actions[1].object().name(), "c");
  EXPECT_EQ(actions[2].object().name(), "a");
  EXPECT_EQ(actions[3].object().name(), "gone");
  EXPECT_EQ(actions[3].action(), v1::OBJECT_ACTION_DELETE);
  options.prune = false;
  EXPECT_EQ(DiffObjects({a, b, c}, {gone_live}, options).size(), 3u);
}

v1::Manifest File(const std::string& name, json spec) {
  json o = {{"apiVersion", "ferry.dev/v1"}, {"kind", "ConfigFile"}, {"metadata", {{"name", name}}}, {"spec", spec}};
  return (*ParseManifests(o.dump(), "x.yaml"))[0];
}

TEST(DifferTest, BinaryContentDiffersByDigestAndNoRawBytesAreShown) {
  const std::string old_bytes = std::string("\x89PNG\x00\x00\xff\xfe", 8);
  const std::string new_bytes = std::string("\x89PNG\x00\x01\xff\xfe", 8);
  v1::Manifest want = File("logo", {{"path", "logo.png"}, {"contentBase64", absl::Base64Escape(new_bytes)}});
  json live = {{"apiVersion", "ferry.dev/v1"}, {"kind", "ConfigFile"}, {"metadata", {{"name", "logo"}}},
               {"spec", {{"path", "logo.png"}, {"contentBase64", absl::Base64Escape(old_bytes)}}}};
  auto actions = DiffObjects({want}, {Live(want, live, live)}, {});
  ASSERT_EQ(actions[0].action(), v1::OBJECT_ACTION_UPDATE);
  const std::string& diff = actions[0].unified_diff();
  EXPECT_NE(diff.find("binary content differs: sha256:" + Sha256Hex(old_bytes) + " -> sha256:" + Sha256Hex(new_bytes)),
            std::string::npos) << diff;
  for (const std::string& shown : {diff, actions[0].json_patch()}) {
    EXPECT_EQ(shown.find(absl::Base64Escape(new_bytes)), std::string::npos) << shown;
    EXPECT_EQ(shown.find(absl::Base64Escape(old_bytes)), std::string::npos) << shown;
    EXPECT_EQ(shown.find("PNG"), std::string::npos) << shown;
  }
  // The same bytes, as text on one side and base64 on the other, do not differ.
  v1::Manifest text = File("t", {{"path", "t.txt"}, {"content", "hello\n"}});
  json live_b64 = json::parse(text.json());
  live_b64["spec"].erase("content");
  live_b64["spec"]["contentBase64"] = absl::Base64Escape("hello\n");
  EXPECT_EQ(DiffObjects({text}, {Live(text, live_b64, live_b64)}, {})[0].action(), v1::OBJECT_ACTION_NOOP);
  // A new binary file: its digest, not its bytes.
  auto created = DiffObjects({want}, {}, {});
  EXPECT_NE(created[0].unified_diff().find("sha256:" + Sha256Hex(new_bytes)), std::string::npos);
  EXPECT_EQ(created[0].unified_diff().find(absl::Base64Escape(new_bytes)), std::string::npos);
}

v1::Plan BigPlan(int n) {
  v1::Plan plan;
  plan.set_id("plan-1");
  plan.set_manifests_digest("sha256:abc");
  for (int i = 0; i < n; ++i) {
    *plan.add_manifests() = File(absl::StrCat("f", i), {{"path", absl::StrCat("f", i)}, {"content", std::string(500, 'x')}});
    v1::PlanAction* a = plan.add_actions();
    *a->mutable_object() = plan.manifests(i).object();
    a->set_action(i % 2 ? v1::OBJECT_ACTION_NOOP : v1::OBJECT_ACTION_CREATE);
    if (i % 2 == 0) {
      a->set_json_patch(std::string(300, 'p'));
      a->set_unified_diff(std::string(300, 'd'));
    }
  }
  return plan;
}

TEST(PlanViewTest, APlanTooLargeForOneMessageIsMarkedAndKeepsItsCounts) {
  v1::Plan plan = BigPlan(100);
  v1::Plan small = plan;
  EXPECT_FALSE(FitInMessage(small, 1 << 20)) << "fits: left whole";
  EXPECT_EQ(small.manifests_size(), 100);
  EXPECT_FALSE(small.details_omitted());
  EXPECT_TRUE(FitInMessage(plan, 10000));
  EXPECT_TRUE(plan.details_omitted());
  EXPECT_EQ(plan.manifest_count(), 100);
  EXPECT_EQ(plan.manifests_size(), 0);
  EXPECT_EQ(plan.actions_size(), 100) << "actions stay, without their diffs";
  EXPECT_TRUE(plan.actions(0).unified_diff().empty());
  EXPECT_LT(plan.ByteSizeLong(), 10000u);
}

TEST(PlanViewTest, ManifestPagesAreBoundedByBytesAndTogetherAreThePlan) {
  const v1::Plan plan = BigPlan(200);
  v1::Plan rebuilt = plan;
  OmitDetails(rebuilt);
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListPlanManifestsResponse> page = ManifestPage(plan, 0, token, 8 * 1024);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    EXPECT_LE(page->ByteSizeLong(), 8u * 1024 + 1024) << "bounded by bytes";
    EXPECT_GT(page->manifests_size() + page->action_details_size(), 0);
    EXPECT_EQ(page->manifest_count(), 200);
    EXPECT_EQ(page->manifests_digest(), "sha256:abc");
    if (page->manifests_size() > 0) {
      EXPECT_EQ(page->manifest_offset(), rebuilt.manifests_size());
    }
    for (const auto& m : page->manifests()) *rebuilt.add_manifests() = m;
    for (const auto& d : page->action_details()) {
      rebuilt.mutable_actions(d.index())->set_json_patch(d.json_patch());
      rebuilt.mutable_actions(d.index())->set_unified_diff(d.unified_diff());
    }
    token = page->next_page_token();
    ASSERT_LT(pages, 1000);
  } while (!token.empty());
  EXPECT_GT(pages, 10);
  rebuilt.clear_details_omitted();
  rebuilt.clear_manifest_count();
  EXPECT_EQ(rebuilt.SerializeAsString(), plan.SerializeAsString()) << "the pages are the whole plan";
  // One item larger than the budget still comes, alone.
  absl::StatusOr<v1::ListPlanManifestsResponse> one = ManifestPage(plan, 0, "", 10);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->manifests_size(), 1);
  EXPECT_EQ(one->next_page_token(), "1");
  EXPECT_EQ(ManifestPage(plan, 0, "x", 1024).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ManifestPage(plan, 0, "999", 1024).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ManifestPage(plan, 10001, "", 1024).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ManifestPage(plan, 3, "", 1 << 20)->manifests_size(), 3) << "page_size bounds the count";
}

TEST(UnifiedDiffTest, ProducesHunksWithContext) {
  std::string from = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
  std::string to = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n";
  std::string d = UnifiedDiff(from, to, "a", "b");
  EXPECT_EQ(d, "--- a\n+++ b\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n");
  EXPECT_EQ(UnifiedDiff(from, from, "a", "b"), "");
}

TEST(SyncWindowTest, AllowWindowOpensAndCloses) {
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  v1::SyncWindow* w = windows.Add();
  w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  w->set_schedule("0 9 * * 1-5");  // weekdays 09:00 for 8 h
  w->mutable_duration()->set_seconds(8 * 3600);
  ASSERT_TRUE(ValidateSyncWindows(windows, "environment.sync_windows").ok());
  absl::TimeZone utc = absl::UTCTimeZone();
  // 2026-11-26 is a Thursday.
  EXPECT_TRUE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 10, 0), utc)).open);
  WindowDecision night = EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 18, 0), utc));
  EXPECT_FALSE(night.open);
  EXPECT_NE(night.message.find("opens at 2026-11-27T09:00:00Z"), std::string::npos) << night.message;
  // Saturday: closed until Monday.
  EXPECT_FALSE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 28, 10, 0), utc)).open);
}

TEST(SyncWindowTest, DenyWinsOverAllow) {
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  v1::SyncWindow* allow = windows.Add();
  allow->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  allow->set_schedule("0 0 * * *");
  allow->mutable_duration()->set_seconds(24 * 3600);
  v1::SyncWindow* deny = windows.Add();
  deny->set_kind(v1::SYNC_WINDOW_KIND_DENY);
  deny->set_schedule("30 12 * * *");
  deny->mutable_duration()->set_seconds(3600);
  absl::TimeZone utc = absl::UTCTimeZone();
  EXPECT_TRUE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 12, 29), utc)).open);
  WindowDecision d = EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 13, 0), utc));
  EXPECT_FALSE(d.open);
  EXPECT_NE(d.message.find("deny window"), std::string::npos);
  EXPECT_NE(d.message.find("opens at 2026-11-26T13:30:00Z"), std::string::npos) << d.message;
  EXPECT_TRUE(EvaluateSyncWindows(windows, absl::FromCivil(absl::CivilMinute(2026, 11, 26, 13, 30), utc)).open);
}

TEST(SyncWindowTest, InvalidScheduleNamesField) {
  google::protobuf::RepeatedPtrField<v1::SyncWindow> windows;
  v1::SyncWindow* w = windows.Add();
  w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
  w->set_schedule("61 * * * *");
  w->mutable_duration()->set_seconds(60);
  absl::Status s = ValidateSyncWindows(windows, "environment.sync_windows");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("environment.sync_windows[0].schedule"), std::string::npos) << s;
}

// Found by fuzz/sync_window_fuzzer.cc: a step as large as an int overflowed
// the loop counter past the last value (undefined behaviour; UBSan in
// make test-asan reports it).
TEST(SyncWindowTest, AStepAsLargeAsAnIntMatchesOnlyTheFirstValue) {
  absl::StatusOr<CronSchedule> c = CronSchedule::Parse("59/2147483647 * * * *");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->Matches(absl::CivilMinute(2026, 11, 26, 10, 59)));
  EXPECT_FALSE(c->Matches(absl::CivilMinute(2026, 11, 26, 10, 58)));
}

v1::Application App(const std::string& id, std::vector<std::string> deps = {}) {
  v1::Application a;
  a.set_id(id);
  a.set_repository_id("repo");
  a.set_ref("main");
  a.set_render_method(v1::RENDER_METHOD_PLAIN);
  a.add_environment_ids("local");
  for (auto& d : deps) a.add_depends_on(d);
  return a;
}

TEST(ValidationTest, RejectsCycleNamingIt) {
  std::map<std::string, v1::Application> apps = {{"a", App("a", {"b"})}, {"b", App("b", {"c"})}, {"c", App("c", {"a"})}};
  absl::Status s = ValidateDependsOn(apps);
  ASSERT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("application.depends_on: cycle: a -> b -> c -> a"), std::string::npos) << s;
}

TEST(ValidationTest, TopologicalOrderPutsDependenciesFirst) {
  std::map<std::string, v1::Application> apps = {{"web", App("web", {"db", "cache"})}, {"db", App("db")}, {"cache", App("cache", {"db"})}};
  EXPECT_EQ(TopologicalOrder(apps), (std::vector<std::string>{"db", "cache", "web"}));
}

TEST(ValidationTest, NamesTheBadField) {
  v1::Application a = App("web");
  EXPECT_NE(ValidateApplication(a, {"prod"}).message().find("application.environment_ids[0]: unknown environment \"local\""),
            std::string::npos);
  a = App("web");
  a.set_render_method(static_cast<v1::RenderMethod>(42));
  EXPECT_NE(ValidateApplication(a, {"local"}).message().find("application.render_method"), std::string::npos);
  a = App("web");
  a.set_path("../outside");
  EXPECT_NE(ValidateApplication(a, {"local"}).message().find("application.path"), std::string::npos);
  a = App("Web_1");
  EXPECT_NE(ValidateApplication(a, {"local"}).message().find("application.id"), std::string::npos);
  a = App("web");
  ASSERT_TRUE(ValidateApplication(a, {"local"}).ok());
  EXPECT_EQ(a.ref(), "refs/heads/main");
}

TEST(DeclarativeConfigTest, ParsesTheDocumentedExample) {
  auto c = ParseDeclarativeConfig(R"(
environments:
  local:
    host: {rootDir: /var/lib/ferry/local}
    approval: auto
  prod:
    host: {rootDir: /srv/ferry/prod}
    approval: manual
    promoteFrom: local
    syncWindows:
      - {kind: deny, schedule: "0 22 * * *", duration: 10h, timeZone: Europe/Berlin}
applications:
  web:
    path: apps/web
    render: plain
    environments: [local, prod]
    sync: {prune: true, selfHeal: true}
    dependsOn: [db]
    healthTimeout: 2m
    ignoreDifferences:
      - {kind: Process, jsonPointers: [/spec/replicas]}
  db:
    path: apps/db
    render: helm
    helm: {valuesFiles: [values.yaml], releaseName: db}
    environments: local
)",
                                  "ferry.yaml", "config", "refs/heads/main");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 2u);
  EXPECT_EQ(c->environments[1].promote_from(), "local");
  EXPECT_EQ(c->environments[1].sync_windows(0).duration().seconds(), 36000);
  ASSERT_EQ(c->applications.size(), 2u);
  const v1::Application& web = c->applications[0];
  EXPECT_EQ(web.id(), "web");
  EXPECT_EQ(web.repository_id(), "config");
  EXPECT_TRUE(web.sync_policy().automated());
  EXPECT_TRUE(web.sync_policy().prune());
  EXPECT_EQ(web.health_timeout().seconds(), 120);
  EXPECT_EQ(c->applications[1].render_method(), v1::RENDER_METHOD_HELM);
}

TEST(DeclarativeConfigTest, UnknownRenderMethodNamesFieldAndLine) {
  auto c = ParseDeclarativeConfig("applications:\n  web:\n    render: jsonnet\n    environments: [local]\n", "ferry.yaml",
                                  "r", "refs/heads/main");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message(),
            "ferry.yaml:3: applications.web.render: unknown render method \"jsonnet\" (must be plain, kustomize, helm, ansible or terraform)");
}

TEST(DeclarativeConfigTest, TyposAndMalformedYamlAreRejected) {
  auto typo = ParseDeclarativeConfig("applications:\n  web:\n    paht: x\n    environments: [a]\n", "ferry.yaml", "r", "m");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("applications.web.paht: unknown key"), std::string::npos) << typo.status();
  auto bad = ParseDeclarativeConfig("applications: [\n", "ferry.yaml", "r", "m");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("malformed YAML"), std::string::npos);
}

TEST(DeclarativeConfigTest, KubernetesEnvironmentsTakeAKubeconfigContextOrInClusterCredentials) {
  auto c = ParseDeclarativeConfig(R"(
environments:
  staging:
    kubernetes: {kubeconfig: /etc/ferry/kubeconfig, context: staging, namespace: shop}
  prod:
    kubernetes: {inCluster: true, namespace: shop}
applications:
  web:
    environments: [staging, prod]
    sync: {prune: true, forceConflicts: true}
)",
                                  "ferry.yaml", "config", "refs/heads/main");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 2u);
  auto target_of = [&](const std::string& id) {
    for (const auto& e : c->environments)
      if (e.id() == id) return e.target();
    return v1::DeployTarget();
  };
  const v1::DeployTarget staging = target_of("staging");
  EXPECT_EQ(staging.kind(), v1::TARGET_KIND_KUBERNETES);
  EXPECT_EQ(staging.kubernetes().kubeconfig(), "/etc/ferry/kubeconfig");
  EXPECT_EQ(staging.kubernetes().context(), "staging");
  EXPECT_EQ(staging.kubernetes().namespace_(), "shop");
  const v1::DeployTarget prod = target_of("prod");
  EXPECT_TRUE(prod.kubernetes().in_cluster());
  EXPECT_TRUE(c->applications[0].sync_policy().force_conflicts());
  std::map<std::string, v1::Environment> envs;
  for (const auto& e : c->environments) {
    EXPECT_TRUE(ValidateEnvironment(e, envs).ok()) << e.id();
    envs[e.id()] = e;
  }
}

TEST(DeclarativeConfigTest, KubernetesEnvironmentMistakesNameTheField) {
  auto both = ParseDeclarativeConfig(
      "environments:\n  p:\n    host: {rootDir: /x}\n    kubernetes: {inCluster: true}\n", "ferry.yaml", "r", "m");
  EXPECT_NE(both.status().message().find("environments.p: has more than one of host, kubernetes, ansible and terraform"), std::string::npos)
      << both.status();
  auto none = ParseDeclarativeConfig("environments:\n  p:\n    kubernetes: {context: x}\n", "ferry.yaml", "r", "m");
  EXPECT_NE(none.status().message().find("environments.p.kubernetes.kubeconfig: is required"), std::string::npos)
      << none.status();
  auto mixed = ParseDeclarativeConfig(
      "environments:\n  p:\n    kubernetes: {inCluster: true, kubeconfig: /k}\n", "ferry.yaml", "r", "m");
  EXPECT_NE(mixed.status().message().find("inCluster: true takes no kubeconfig"), std::string::npos) << mixed.status();
  auto typo = ParseDeclarativeConfig("environments:\n  p:\n    kubernetes: {kubeConfig: /k}\n", "ferry.yaml", "r", "m");
  EXPECT_NE(typo.status().message().find("environments.p.kubernetes.kubeConfig: unknown key"), std::string::npos)
      << typo.status();
}

TEST(ValidationTest, KubernetesTargetNeedsAnAbsoluteKubeconfigOrInClusterAndALabelNamespace) {
  v1::DeployTarget t;
  t.set_kind(v1::TARGET_KIND_KUBERNETES);
  EXPECT_NE(ValidateTarget(t).message().find("kubernetes: is required"), std::string::npos);
  t.mutable_kubernetes()->set_kubeconfig("relative/kubeconfig");
  EXPECT_NE(ValidateTarget(t).message().find("must be an absolute path"), std::string::npos);
  t.mutable_kubernetes()->set_kubeconfig("/etc/kubeconfig");
  EXPECT_TRUE(ValidateTarget(t).ok());
  t.mutable_kubernetes()->set_namespace_("Not_A_Label");
  EXPECT_NE(ValidateTarget(t).message().find("environment.target.kubernetes.namespace"), std::string::npos);
  t.mutable_kubernetes()->set_namespace_("shop");
  t.mutable_kubernetes()->set_in_cluster(true);
  EXPECT_NE(ValidateTarget(t).message().find("in_cluster takes neither"), std::string::npos);
  t.mutable_kubernetes()->clear_kubeconfig();
  EXPECT_TRUE(ValidateTarget(t).ok());
  t.set_kind(v1::TARGET_KIND_HOST);
  EXPECT_FALSE(ValidateTarget(t).ok());
}

TEST(DifferTest, KubernetesSecretValuesAreComparedAndShownAsDigestsOnly) {
  auto desired = ParseManifests(
      "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: n3w-hunter2}\n", "s.yaml");
  ASSERT_TRUE(desired.ok()) << desired.status();
  // Created: the plan's diff holds the digest, not the value.
  auto created = DiffObjects(*desired, {}, {});
  ASSERT_EQ(created.size(), 1u);
  for (const std::string& text : {created[0].unified_diff(), created[0].json_patch()}) {
    EXPECT_EQ(text.find("n3w-hunter2"), std::string::npos) << text;
    EXPECT_NE(text.find("sha256:" + Sha256Hex("n3w-hunter2")), std::string::npos) << text;
  }
  // Updated: live (base64 data, as the server holds it) differs by digest.
  json live = {{"apiVersion", "v1"},
               {"kind", "Secret"},
               {"metadata", {{"name", "db"}}},
               {"data", {{"password", absl::Base64Escape("old-hunter1")}}}};
  json applied = {{"apiVersion", "v1"},
                  {"kind", "Secret"},
                  {"metadata", {{"name", "db"}}},
                  {"stringData", {{"password", "old-hunter1"}}}};
  auto updated = DiffObjects(*desired, {Live((*desired)[0], live, applied)}, {});
  ASSERT_EQ(updated[0].action(), v1::OBJECT_ACTION_UPDATE);
  for (const std::string& text : {updated[0].unified_diff(), updated[0].json_patch()}) {
    for (const std::string& secret : {std::string("n3w-hunter2"), std::string("old-hunter1"),
                                      absl::Base64Escape("old-hunter1")}) {
      EXPECT_EQ(text.find(secret), std::string::npos) << text;
    }
  }
  // Unchanged: no difference.
  json same_applied = json::parse((*desired)[0].json());
  json same_live = {{"apiVersion", "v1"},
                    {"kind", "Secret"},
                    {"metadata", {{"name", "db"}}},
                    {"data", {{"password", absl::Base64Escape("n3w-hunter2")}}}};
  auto same = DiffObjects(*desired, {Live((*desired)[0], same_live, same_applied)}, {});
  EXPECT_EQ(same[0].action(), v1::OBJECT_ACTION_NOOP) << same[0].unified_diff();
  // Pruned: the deletion's diff holds digests only.
  DiffOptions prune;
  prune.prune = true;
  auto pruned = DiffObjects({}, {Live((*desired)[0], same_live, same_applied)}, prune);
  ASSERT_EQ(pruned.size(), 1u);
  EXPECT_EQ(pruned[0].unified_diff().find(absl::Base64Escape("n3w-hunter2")), std::string::npos)
      << pruned[0].unified_diff();
}

TEST(DifferTest, TheTargetsDryRunIsComparedSoDefaultsInsideListsAreNotDifferences) {
  auto desired = ParseManifests(R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - {name: web, image: "nginx:1", resources: {limits: {cpu: "0.5"}}}
)",
                                "d.yaml");
  ASSERT_TRUE(desired.ok()) << desired.status();
  // As the server stores it: defaults inside the list, cpu normalised.
  json live = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","uid":"u",
    "resourceVersion":"9","generation":1},"spec":{"replicas":2,"strategy":{"type":"RollingUpdate"},
    "template":{"spec":{"containers":[{"name":"web","image":"nginx:1","imagePullPolicy":"IfNotPresent",
    "terminationMessagePath":"/dev/termination-log","resources":{"limits":{"cpu":"500m"}}}]}}},
    "status":{"replicas":2}})");
  v1::LiveObject l = Live((*desired)[0], live, json::parse((*desired)[0].json()));
  // Without the dry run, the list's defaults show as a difference.
  EXPECT_EQ(DiffObjects(*desired, {l}, {})[0].action(), v1::OBJECT_ACTION_UPDATE);
  json dry = live;
  dry["metadata"]["resourceVersion"] = "10";
  dry.erase("status");
  l.set_dry_run_json(dry.dump());
  auto same = DiffObjects(*desired, {l}, {});
  EXPECT_EQ(same[0].action(), v1::OBJECT_ACTION_NOOP) << same[0].unified_diff();
  // A real change shows, with the conflict the apply would meet.
  dry["spec"]["replicas"] = 3;
  l.set_dry_run_json(dry.dump());
  l.set_conflict("conflict: .spec.replicas (conflict with \"kubectl\" using apps/v1)");
  auto changed = DiffObjects(*desired, {l}, {});
  ASSERT_EQ(changed[0].action(), v1::OBJECT_ACTION_UPDATE);
  EXPECT_EQ(json::parse(changed[0].json_patch()).size(), 1u) << changed[0].json_patch();
  EXPECT_EQ(json::parse(changed[0].json_patch())[0]["path"], "/spec/replicas");
  EXPECT_NE(changed[0].unified_diff().find("conflict with \"kubectl\""), std::string::npos) << changed[0].unified_diff();
  EXPECT_NE(changed[0].unified_diff().find("sync.forceConflicts"), std::string::npos);
}

TEST(PlanViewTest, SecretValuesInManifestsBecomeDigestsForPeople) {
  v1::Plan plan;
  auto secret = ParseManifests("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: t0p-s3cret}\n",
                               "s.yaml");
  auto cm = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {password: not-secret}\n",
                           "c.yaml");
  ASSERT_TRUE(secret.ok() && cm.ok());
  *plan.add_manifests() = (*secret)[0];
  *plan.add_manifests() = (*cm)[0];
  MaskSecretValues(*plan.mutable_manifests());
  EXPECT_EQ(plan.manifests(0).json().find("t0p-s3cret"), std::string::npos) << plan.manifests(0).json();
  EXPECT_NE(plan.manifests(0).json().find("sha256:" + Sha256Hex("t0p-s3cret")), std::string::npos);
  EXPECT_NE(plan.manifests(1).json().find("not-secret"), std::string::npos);  // Not a Secret: as rendered.
}

}  // namespace
}  // namespace ferry::planner
