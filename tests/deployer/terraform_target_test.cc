// The terraform target (terraform.ferry.dev/v1 Stack objects) through the
// Target interface the deployer uses, with a real terraform (or tofu) and the
// test PostgreSQL as the pg backend: the dry run is the plan (kept, digest
// shown), apply runs exactly that plan, a re-plan is a no-op, an out-of-band
// change is drift, a stale plan and a missing plan are refused, secret
// variables never show.

#include "services/deployer/terraform/terraform_target.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "common/secrets/sealed_box.h"
#include "services/deployer/secrets/secret_flags.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::terraform {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kMain[] = R"(
variable "greeting" {
  type = string
}
variable "token" {
  type      = string
  sensitive = true
}
resource "terraform_data" "hello" {
  input = var.greeting
}
resource "terraform_data" "secret" {
  input = var.token
}
)";
constexpr char kSecret[] = "pg-token-5d1e0b-secret";

class TerraformTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::chmod(dir_.c_str(), 0711), 0);
    ::mkdir((dir_ + "/scratch").c_str(), 0711);
    ::mkdir((dir_ + "/secrets").c_str(), 0700);
    std::ofstream(dir_ + "/secrets/tf-token") << kSecret << "\n";
    std::ofstream(dir_ + "/key") << ferry::secrets::SealedBoxKey::Generate()->SecretKeyText();
    ASSERT_EQ(::chmod((dir_ + "/key").c_str(), 0600), 0);
    secrets::SecretFlags flags;
    flags.secrets_key_file = dir_ + "/key";
    flags.secrets_dir = dir_ + "/secrets";
    absl::StatusOr<secrets::SecretResolverOptions> o = secrets::OptionsFromFlags(flags);
    ASSERT_TRUE(o.ok()) << o.status();
    resolver_ = std::make_unique<secrets::SecretResolver>(*o);
    store_ = std::make_unique<DirectoryPlanStore>(dir_ + "/plans");

    TerraformTargetOptions options;
    const char* env = std::getenv("FERRY_TERRAFORM_BIN");
    absl::StatusOr<std::string> bin = FindTerraformBinary(env ? env : "", FERRY_TEST_TOOLS_DIR);
    ASSERT_TRUE(bin.ok()) << bin.status();
    options.base.binary = *bin;
    options.base.scratch_root = dir_ + "/scratch";
    options.base.pg_conn_str = db_.url() + (db_.url().find('?') == std::string::npos ? "?sslmode=disable" : "&sslmode=disable");
    options.base.timeout = absl::Seconds(120);
    if (::geteuid() == 0) {
      if (struct passwd* pw = ::getpwnam("nobody"); pw != nullptr) {
        options.base.uid = pw->pw_uid;
        options.base.gid = pw->pw_gid;
      }
    }
    options.plans = store_.get();
    options.secrets = resolver_.get();
    target_ = std::make_unique<TerraformTarget>(options);
  }

  TargetObject Stack(const std::string& greeting, const std::string& plan_digest = "") {
    json doc = {{"apiVersion", "terraform.ferry.dev/v1"},
                {"kind", "Stack"},
                {"metadata", {{"name", "infra"}}},
                {"spec",
                 {{"files", {{"main.tf", kMain}}},
                  {"variables", {{"greeting", greeting}}},
                  {"secretVariables", {{"token", {{"secretRef", {{"file", "tf-token"}}}}}}}}}};
    if (!plan_digest.empty()) doc["spec"]["planDigest"] = plan_digest;
    return TargetObject{{kStackGroup, kStackKind, "", "infra"}, DumpJsonLossy(doc), "infra/main.tf", 0};
  }

  // The dry run (the plan Ferry shows) and the digest it carries.
  std::pair<json, std::string> Plan(const TargetObject& o) {
    absl::StatusOr<DryRunResult> dry = target_->DryRun(app_, o);
    EXPECT_TRUE(dry.ok()) << dry.status();
    if (!dry.ok()) return {};
    EXPECT_THAT(dry->json, Not(HasSubstr(kSecret)));
    absl::StatusOr<json> doc = ParseJson(dry->json);
    EXPECT_TRUE(doc.ok());
    return {*doc, doc->value("planDigest", std::string())};
  }

  absl::Status Apply(const TargetObject& o) { return target_->Apply(app_, o, nullptr, absl::Now() + absl::Minutes(2), nullptr); }

  ferry::testing::TestDatabase db_;
  std::string dir_ = ferry::testing::MakeTempDir("terraform-target");
  std::unique_ptr<secrets::SecretResolver> resolver_;
  std::unique_ptr<DirectoryPlanStore> store_;
  std::unique_ptr<TerraformTarget> target_;
  AppScope app_{"infra", "dev"};
};

TEST_F(TerraformTargetTest, PlanApproveApplyThenTheReplanIsANoOpAndTheStackIsInSync) {
  ObservedObject before = target_->Observe(app_, Stack("hi").key, nullptr);
  EXPECT_TRUE(before.exists);  // so that the planner asks for the dry run
  auto [plan, digest] = Plan(Stack("hi"));
  EXPECT_THAT(digest, HasSubstr("sha256:"));
  EXPECT_EQ(plan["plan"]["summary"]["add"], 2);
  EXPECT_THAT(plan.dump(), HasSubstr("terraform_data.hello"));
  EXPECT_THAT(plan.dump(), HasSubstr("input: null -> (sensitive)"));

  // The approved plan (its digest in the deployed object) is applied.
  ASSERT_TRUE(Apply(Stack("hi", digest)).ok());
  EXPECT_EQ(target_->LastAppliedDigest(app_), digest);

  TargetObject applied = Stack("hi", digest);
  ObservedObject o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  EXPECT_EQ(o.health, v1::HEALTH_STATUS_HEALTHY);
  // The re-plan: no changes, no digest, and the same document as the live
  // one, so the planner's differ finds nothing to do.
  auto [again, again_digest] = Plan(Stack("hi"));
  EXPECT_EQ(again_digest, "");
  EXPECT_FALSE(again.contains("plan")) << again.dump();
  EXPECT_EQ(again, *ParseJson(o.live_json));
}

TEST_F(TerraformTargetTest, AStackWithoutAnApprovedPlanOrWithAnUnknownOneIsNeverApplied) {
  auto [plan, digest] = Plan(Stack("hi"));  // planned, but not approved into the object
  absl::Status none = Apply(Stack("hi"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.message(), HasSubstr("carries no approved Terraform plan"));
  absl::Status unknown = Apply(Stack("hi", "sha256:" + std::string(64, 'a')));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(unknown.message(), HasSubstr("no longer kept"));
  EXPECT_EQ(target_->LastAppliedDigest(app_), "");
  ASSERT_TRUE(Apply(Stack("hi", digest)).ok());
  EXPECT_EQ(target_->LastAppliedDigest(app_), digest);
}

TEST_F(TerraformTargetTest, AnApprovedPlanIsStaleOnceAnotherApplyChangedTheStateAndNothingIsApplied) {
  auto [first, first_digest] = Plan(Stack("first"));
  auto [second, second_digest] = Plan(Stack("second"));
  ASSERT_TRUE(Apply(Stack("second", second_digest)).ok());
  absl::Status stale = Apply(Stack("first", first_digest));
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.message(), HasSubstr("plan is stale"));
  EXPECT_THAT(stale.message(), Not(HasSubstr(kSecret)));
  TargetObject applied = Stack("second", second_digest);
  ObservedObject o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
}

TEST_F(TerraformTargetTest, AnOutOfBandChangeIsDriftAndReapplyingTheAppliedStackHealsIt) {
  auto [plan, digest] = Plan(Stack("hi"));
  ASSERT_TRUE(Apply(Stack("hi", digest)).ok());
  // Out of band: another configuration applied to the same state.
  auto [other, other_digest] = Plan(Stack("edited elsewhere"));
  ASSERT_TRUE(Apply(Stack("edited elsewhere", other_digest)).ok());

  TargetObject applied = Stack("hi", digest);
  ObservedObject o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_THAT(o.drift_message, HasSubstr("~ terraform_data.hello (update)"));
  EXPECT_THAT(o.drift_message, HasSubstr("input: \"edited elsewhere\" -> \"hi\""));
  EXPECT_THAT(o.drift_message, Not(HasSubstr(kSecret)));

  // Self-heal re-applies the applied object: its plan was applied already,
  // so a fresh plan is made and applied, never the old one.
  ASSERT_TRUE(Apply(applied).ok());
  EXPECT_NE(target_->LastAppliedDigest(app_), digest);
  ObservedObject healed = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(healed.drift, v1::DRIFT_STATUS_IN_SYNC) << healed.drift_message;
}

TEST_F(TerraformTargetTest, BadStacksAreRefusedBeforeTerraformRunsAndPruningNeverDestroys) {
  TargetObject wrong{{"ferry.dev", "Process", "", "x"}, "{}", "x.yaml", 0};
  absl::StatusOr<std::vector<TargetObject>> p = target_->Prepare(app_, {wrong}, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("only terraform.ferry.dev/v1 Stack"));
  TargetObject bad = Stack("hi");
  bad.json = R"({"spec":{"files":{"main.tf":"x"},"variables":{"no spaces":"1"}}})";
  p = target_->Prepare(app_, {bad}, nullptr);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(p.status().message(), HasSubstr("\"no spaces\" is not a variable name"));
  TargetObject missing = Stack("hi");
  missing.json = R"({"spec":{"files":{"main.tf":"x"},"secretVariables":{"t":{"secretRef":{"file":"absent"}}}}})";
  absl::StatusOr<DryRunResult> dry = target_->DryRun(app_, missing);
  ASSERT_FALSE(dry.ok());
  EXPECT_THAT(dry.status().message(), HasSubstr("spec.secretVariables.t.secretRef"));
  absl::Status del = target_->Delete(app_, Stack("hi"), absl::Now());
  EXPECT_EQ(del.code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ferry::deployer::terraform
