// The Terraform/OpenTofu engine against a real terraform (or tofu) binary
// and a real PostgreSQL `pg` backend: plan, apply of the saved plan, no-op
// re-plan, drift after an out-of-band apply, a stale plan refused, secrets
// masked, one state per environment schema. Only the built-in
// terraform_data resource is used: no provider registry is reachable.

#include "services/deployer/terraform/terraform_stack.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::terraform {
namespace {

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
output "greeting" {
  value = terraform_data.hello.output
}
)";

constexpr char kSecret[] = "tok-7f3a9c-very-secret";

std::string Binary() {
  const char* env = std::getenv("FERRY_TERRAFORM_BIN");
  absl::StatusOr<std::string> found = FindTerraformBinary(env ? env : "", FERRY_TEST_TOOLS_DIR);
  EXPECT_TRUE(found.ok()) << found.status();
  return found.ok() ? *found : "";
}

class TerraformStackTest : public ::testing::Test {
 protected:
  RunnerSettings Settings(const std::string& schema, const std::string& greeting) {
    RunnerSettings s;
    s.binary = Binary();
    s.scratch_root = scratch_;
    // libpq URL of the test database; the pg backend makes its schema.
    s.pg_conn_str = db_.url() + (db_.url().find('?') == std::string::npos ? "?sslmode=disable" : "&sslmode=disable");
    s.pg_schema = schema;
    s.variables = {{"greeting", greeting}};
    s.secret_variables = {{"token", kSecret}};
    // Terraform runs unprivileged: as nobody when the test runs as root.
    if (::geteuid() == 0) {
      struct passwd* pw = ::getpwnam("nobody");
      if (pw != nullptr) {
        s.uid = pw->pw_uid;
        s.gid = pw->pw_gid;
      }
    }
    s.timeout = absl::Seconds(120);
    return s;
  }

  void SetUp() override { ASSERT_EQ(::chmod(scratch_.c_str(), 0711), 0); }  // the run-as user reaches its workspace

  ferry::testing::TestDatabase db_;
  std::string scratch_ = ferry::testing::MakeTempDir("terraform-scratch");
  Configuration config_ = {{"main.tf", kMain}};
};

TEST_F(TerraformStackTest, PlanShowsTheChangesAppliesExactlyThatPlanAndReplansToNoChanges) {
  Stack dev(Settings("ferry_env_dev", "hello"));
  absl::StatusOr<SavedPlan> plan = dev.Plan(config_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->view.to_add, 2);
  EXPECT_TRUE(plan->view.has_changes());
  EXPECT_THAT(plan->digest, HasSubstr("sha256:"));
  EXPECT_EQ(plan->digest, PlanDigest(plan->plan_file));
  std::string text = plan->view.Text();
  EXPECT_THAT(text, HasSubstr("+ terraform_data.hello (create)"));
  EXPECT_THAT(text, HasSubstr("input: null -> \"hello\""));
  EXPECT_THAT(text, HasSubstr("input: null -> (sensitive)"));
  EXPECT_THAT(text, HasSubstr("id: null -> (known after apply)"));
  EXPECT_THAT(text, Not(HasSubstr(kSecret)));
  EXPECT_THAT(plan->log, Not(HasSubstr(kSecret)));
  EXPECT_THAT(plan->view.ToJson().dump(), Not(HasSubstr(kSecret)));

  absl::StatusOr<ApplyResult> applied = dev.Apply(config_, plan->plan_file, plan->digest);
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(applied->digest, plan->digest);
  EXPECT_THAT(applied->log, HasSubstr("Apply complete! Resources: 2 added"));
  EXPECT_THAT(applied->log, Not(HasSubstr(kSecret)));

  absl::StatusOr<SavedPlan> again = dev.Plan(config_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->view.has_changes()) << again->view.Text();
  EXPECT_THAT(again->view.Text(), HasSubstr("No changes"));
  absl::StatusOr<DriftResult> drift = dev.CheckDrift(config_);
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_FALSE(drift->drifted) << drift->view.Text();
}

TEST_F(TerraformStackTest, AnOutOfBandApplyIsDriftUntilTheConfigurationIsAppliedAgain) {
  Stack dev(Settings("ferry_env_dev", "hello"));
  absl::StatusOr<SavedPlan> plan = dev.Plan(config_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(dev.Apply(config_, plan->plan_file, plan->digest).ok());

  // Someone applies other inputs to the same state, outside Ferry.
  Stack someone(Settings("ferry_env_dev", "changed by hand"));
  absl::StatusOr<SavedPlan> theirs = someone.Plan(config_);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_TRUE(someone.Apply(config_, theirs->plan_file, theirs->digest).ok());

  absl::StatusOr<DriftResult> drift = dev.CheckDrift(config_);
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_TRUE(drift->drifted);
  ASSERT_EQ(drift->view.changes.size(), 1u) << drift->view.Text();
  EXPECT_EQ(drift->view.changes[0].address, "terraform_data.hello");
  EXPECT_EQ(drift->view.changes[0].action, "update");
  EXPECT_THAT(drift->view.Text(), HasSubstr("input: \"changed by hand\" -> \"hello\""));

  // Self-heal: a fresh plan, applied, ends the drift.
  absl::StatusOr<SavedPlan> heal = dev.Plan(config_);
  ASSERT_TRUE(heal.ok()) << heal.status();
  ASSERT_TRUE(dev.Apply(config_, heal->plan_file, heal->digest).ok());
  absl::StatusOr<DriftResult> after = dev.CheckDrift(config_);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->drifted) << after->view.Text();
}

TEST_F(TerraformStackTest, APlanMadeBeforeAnotherApplyIsRefusedAsStaleAndNothingIsApplied) {
  Stack dev(Settings("ferry_env_dev", "first"));
  absl::StatusOr<SavedPlan> approved = dev.Plan(config_);
  ASSERT_TRUE(approved.ok()) << approved.status();

  Stack other(Settings("ferry_env_dev", "second"));
  absl::StatusOr<SavedPlan> theirs = other.Plan(config_);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_TRUE(other.Apply(config_, theirs->plan_file, theirs->digest).ok());

  absl::StatusOr<ApplyResult> stale = dev.Apply(config_, approved->plan_file, approved->digest);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("plan is stale"));
  EXPECT_THAT(stale.status().message(), HasSubstr("re-plan"));
  EXPECT_THAT(stale.status().message(), Not(HasSubstr(kSecret)));

  // Nothing of the stale plan went live: the state still holds "second".
  absl::StatusOr<DriftResult> drift = other.CheckDrift(config_);
  ASSERT_TRUE(drift.ok()) << drift.status();
  EXPECT_FALSE(drift->drifted) << drift->view.Text();
}

TEST_F(TerraformStackTest, APlanFileThatIsNotTheApprovedOneIsRefusedBeforeTerraformRuns) {
  Stack dev(Settings("ferry_env_dev", "hello"));
  absl::StatusOr<SavedPlan> plan = dev.Plan(config_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::string tampered = plan->plan_file + "x";
  absl::StatusOr<ApplyResult> r = dev.Apply(config_, tampered, plan->digest);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("not the approved"));
  absl::StatusOr<SavedPlan> still = dev.Plan(config_);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->view.to_add, 2);  // nothing was applied
}

TEST_F(TerraformStackTest, EachEnvironmentHasItsOwnStateSchema) {
  Stack dev(Settings("ferry_env_dev", "dev"));
  absl::StatusOr<SavedPlan> plan = dev.Plan(config_);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(dev.Apply(config_, plan->plan_file, plan->digest).ok());
  Stack prod(Settings("ferry_env_prod", "prod"));
  absl::StatusOr<SavedPlan> prod_plan = prod.Plan(config_);
  ASSERT_TRUE(prod_plan.ok()) << prod_plan.status();
  EXPECT_EQ(prod_plan->view.to_add, 2) << "prod sees dev's state: " << prod_plan->view.Text();
}

TEST_F(TerraformStackTest, AConfigurationErrorIsInvalidArgumentWithTerraformsMessage) {
  Stack dev(Settings("ferry_env_dev", "hello"));
  absl::StatusOr<SavedPlan> plan = dev.Plan({{"main.tf", "resource \"terraform_data\" \"x\" {\n  input = var.nope\n}\n"}});
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(plan.status().message(), HasSubstr("var.nope"));

  absl::StatusOr<SavedPlan> escape = dev.Plan({{"../main.tf", kMain}});
  ASSERT_FALSE(escape.ok());
  EXPECT_EQ(escape.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(escape.status().message(), HasSubstr("../main.tf"));

  absl::StatusOr<SavedPlan> two_backends =
      dev.Plan({{"main.tf", kMain}, {"backend.tf", "terraform {\n  backend \"local\" {}\n}\n"}});
  ASSERT_FALSE(two_backends.ok());
  EXPECT_THAT(two_backends.status().message(), HasSubstr("declares a backend"));
}

TEST_F(TerraformStackTest, AUserConfiguredBackendIsUsedAsIs) {
  RunnerSettings s = Settings("", "hello");
  s.pg_conn_str.clear();  // the environment configures no backend: the configuration's own
  std::string state = scratch_ + "/state";
  ASSERT_EQ(::mkdir(state.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(state.c_str(), 0777), 0);
  Stack own(s);
  Configuration config = {{"main.tf", kMain},
                          {"backend.tf", absl::StrCat("terraform {\n  backend \"local\" {\n    path = \"", state,
                                                      "/terraform.tfstate\"\n  }\n}\n")}};
  absl::StatusOr<SavedPlan> plan = own.Plan(config);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(own.Apply(config, plan->plan_file, plan->digest).ok());
  EXPECT_EQ(::access((state + "/terraform.tfstate").c_str(), F_OK), 0);
}

TEST_F(TerraformStackTest, RunsAreBoundedInTimeMemoryAndOutput) {
  RunnerSettings slow = Settings("ferry_env_dev", "hello");
  slow.timeout = absl::Milliseconds(1);
  absl::StatusOr<SavedPlan> timed_out = Stack(slow).Plan(config_);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(timed_out.status().message(), HasSubstr("timed out"));

  RunnerSettings small = Settings("ferry_env_dev", "hello");
  small.memory_limit_mb = 32;  // a Go program cannot start in 32 MiB of address space
  absl::StatusOr<SavedPlan> no_memory = Stack(small).Plan(config_);
  ASSERT_FALSE(no_memory.ok());
  EXPECT_EQ(no_memory.status().code(), absl::StatusCode::kResourceExhausted) << no_memory.status();
  EXPECT_THAT(no_memory.status().message(), HasSubstr("memoryLimitMb"));

  RunnerSettings quiet = Settings("ferry_env_dev", "hello");
  quiet.max_output_bytes = 64;
  absl::StatusOr<SavedPlan> plan = Stack(quiet).Plan(config_);
  ASSERT_TRUE(plan.ok()) << plan.status();  // show -json is bounded separately: the plan is still read
  EXPECT_THAT(plan->log, HasSubstr("[output truncated at 64 bytes]"));

  // An apply given less time than its settings is bounded by it.
  Stack dev(Settings("ferry_env_dev", "hello"));
  absl::StatusOr<SavedPlan> p = dev.Plan(config_);
  ASSERT_TRUE(p.ok()) << p.status();
  absl::StatusOr<ApplyResult> late = dev.Apply(config_, p->plan_file, p->digest, absl::Milliseconds(1));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(TerraformStackTest, TheBundledExampleApplicationPlansAppliesAndReplansToNoChanges) {
  std::ifstream in(std::string(FERRY_TEST_SOURCE_ROOT) + "/examples/apps/infra/main.tf");
  ASSERT_TRUE(in) << "examples/apps/infra/main.tf";
  std::stringstream text;
  text << in.rdbuf();
  Configuration example = {{"main.tf", text.str()}};
  RunnerSettings s = Settings("ferry_env_local", "unused");
  s.variables = {{"environment", "local"}, {"queue_size", "25"}};
  s.secret_variables = {{"api_token", kSecret}};
  Stack local(s);
  absl::StatusOr<SavedPlan> plan = local.Plan(example);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->view.to_add, 3) << plan->view.Text();
  EXPECT_THAT(plan->view.Text(), HasSubstr("orders-local"));
  EXPECT_THAT(plan->view.Text(), Not(HasSubstr(kSecret)));
  ASSERT_TRUE(local.Apply(example, plan->plan_file, plan->digest).ok());
  absl::StatusOr<SavedPlan> again = local.Plan(example);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->view.has_changes()) << again->view.Text();

  s.variables["queue_size"] = "50";
  absl::StatusOr<SavedPlan> bigger = Stack(s).Plan(example);
  ASSERT_TRUE(bigger.ok()) << bigger.status();
  EXPECT_EQ(bigger->view.to_change, 1) << bigger->view.Text();
  EXPECT_THAT(bigger->view.Text(), HasSubstr("input.size: 25 -> 50"));
}

TEST(TerraformPlanViewTest, MasksSensitiveMarksAndSecretValuesTerraformDoesNotMark) {
  const char* show = R"({"format_version":"1.2","variables":{"token":{"value":"s3cr3t"}},
    "resource_changes":[{"address":"terraform_data.a","change":{"actions":["delete","create"],
      "before":{"input":"s3cr3t","output":"s3cr3t","id":"1"},"after":{"input":"new-s3cr3t-x","output":null},
      "before_sensitive":{"input":true},"after_sensitive":{"input":true},"after_unknown":{"id":true,"output":true}}},
     {"address":"terraform_data.b","change":{"actions":["no-op"],"before":{},"after":{}}}],
    "output_changes":{"o":{"actions":["update"],"before":"a","after":"b","before_sensitive":false,"after_sensitive":false}}})";
  absl::StatusOr<PlanView> view = ReadPlanJson(show, {"s3cr3t"});
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ(view->changes.size(), 1u);
  EXPECT_EQ(view->changes[0].action, "replace");
  EXPECT_EQ(view->to_add, 1);
  EXPECT_EQ(view->to_destroy, 1);
  std::string text = view->Text();
  EXPECT_THAT(text, Not(HasSubstr("s3cr3t")));
  EXPECT_THAT(text, HasSubstr("output: (sensitive) -> (known after apply)"));
  EXPECT_THAT(text, HasSubstr("id: \"1\" -> (known after apply)"));
  EXPECT_THAT(text, HasSubstr("o: \"a\" -> \"b\""));
  EXPECT_FALSE(ReadPlanJson("{}", {}).ok());
  EXPECT_FALSE(ReadPlanJson("not json", {}).ok());
}

}  // namespace
}  // namespace ferry::deployer::terraform
