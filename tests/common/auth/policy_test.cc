#include "common/auth/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace ferry::auth {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<const Policy> MustParse(const std::string& text) {
  auto policy = Policy::Parse(text, "policy.yaml");
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : nullptr;
}

// The error of parsing `text`, which must fail with INVALID_ARGUMENT.
std::string ParseError(const std::string& text) {
  auto policy = Policy::Parse(text, "policy.yaml");
  EXPECT_FALSE(policy.ok()) << "parsed:\n" << text;
  if (policy.ok()) return "";
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << policy.status();
  return std::string(policy.status().message());
}

Scope At(std::string application, std::string environment) {
  Scope s;
  s.application = std::move(application);
  s.environment = std::move(environment);
  return s;
}

const Permission kAll[] = {Permission::kView, Permission::kOperate, Permission::kApprove, Permission::kReportChecks,
                           Permission::kAdmin};

// ---- roles ----------------------------------------------------------------

struct RoleCase {
  const char* role;
  bool view, operate, approve, admin;
  bool report_checks = false;
};

class RolePermissionsTest : public ::testing::TestWithParam<RoleCase> {};

TEST_P(RolePermissionsTest, GrantsExactlyItsPermissions) {
  const RoleCase& c = GetParam();
  auto policy = MustParse(absl::StrCat("bindings:\n  - subjects: [\"user:alice\"]\n    role: ", c.role, "\n"));
  ASSERT_NE(policy, nullptr);
  const Principal alice = UserPrincipal("alice");
  for (const Scope& scope : {Scope::Any(), Scope::Global(), At("web", "prod")}) {
    EXPECT_EQ(policy->Allows(alice, Permission::kView, scope), c.view) << c.role;
    EXPECT_EQ(policy->Allows(alice, Permission::kOperate, scope), c.operate) << c.role;
    EXPECT_EQ(policy->Allows(alice, Permission::kApprove, scope), c.approve) << c.role;
    EXPECT_EQ(policy->Allows(alice, Permission::kAdmin, scope), c.admin) << c.role;
    EXPECT_EQ(policy->Allows(alice, Permission::kReportChecks, scope), c.report_checks) << c.role;
  }
  // Somebody else has nothing.
  for (Permission p : kAll) EXPECT_FALSE(policy->Allows(UserPrincipal("bob"), p, Scope::Any()));
}

INSTANTIATE_TEST_SUITE_P(Roles, RolePermissionsTest,
                         ::testing::Values(RoleCase{"viewer", true, false, false, false},
                                           RoleCase{"operator", true, true, false, false},
                                           RoleCase{"approver", true, false, true, false},
                                           RoleCase{"ci", true, false, false, false, true},
                                           RoleCase{"admin", true, true, true, true, true}),
                         [](const auto& info) { return std::string(info.param.role); });

TEST(PolicyTest, PermissionNames) {
  EXPECT_STREQ(PermissionName(Permission::kView), "view");
  EXPECT_STREQ(PermissionName(Permission::kOperate), "operate");
  EXPECT_STREQ(PermissionName(Permission::kApprove), "approve");
  EXPECT_STREQ(PermissionName(Permission::kReportChecks), "report-checks");
  EXPECT_STREQ(PermissionName(Permission::kAdmin), "admin");
}

TEST(PolicyTest, EmptyPolicyDeniesEverything) {
  for (const char* text : {"", "# nothing\n", "bindings: []\n", "{}\n"}) {
    auto policy = MustParse(text);
    ASSERT_NE(policy, nullptr);
    for (Permission p : kAll) EXPECT_FALSE(policy->Allows(UserPrincipal("admin"), p, Scope::Any())) << text;
  }
}

// ---- scopes ---------------------------------------------------------------

TEST(PolicyTest, ApproverOfProdOnlyCannotApproveStaging) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:alice"]
    role: approver
    environments: ["prod"]
)");
  ASSERT_NE(policy, nullptr);
  const Principal alice = UserPrincipal("alice");
  EXPECT_TRUE(policy->Allows(alice, Permission::kApprove, At("web", "prod")));
  EXPECT_TRUE(policy->Allows(alice, Permission::kApprove, At("api", "prod")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kApprove, At("web", "staging")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kApprove, At("web", "production")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kView, At("web", "staging")));
  // A resource of no environment (a repository) is not in prod.
  EXPECT_FALSE(policy->Allows(alice, Permission::kView, At("web", "")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kView, Scope::Global()));
  // But she has the permission somewhere.
  EXPECT_TRUE(policy->Allows(alice, Permission::kApprove, Scope::Any()));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, Scope::Any()));
}

TEST(PolicyTest, OperatorOfOneApplicationOnly) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:olga"]
    role: operator
    applications: ["web"]
)");
  ASSERT_NE(policy, nullptr);
  const Principal olga = UserPrincipal("olga");
  EXPECT_TRUE(policy->Allows(olga, Permission::kOperate, At("web", "prod")));
  EXPECT_TRUE(policy->Allows(olga, Permission::kOperate, At("web", "staging")));
  EXPECT_FALSE(policy->Allows(olga, Permission::kOperate, At("api", "prod")));
  EXPECT_FALSE(policy->Allows(olga, Permission::kOperate, At("web-admin", "prod")));
  EXPECT_FALSE(policy->Allows(olga, Permission::kOperate, At("", "prod")));
  EXPECT_TRUE(policy->Allows(olga, Permission::kOperate, Scope::Any()));
  EXPECT_FALSE(policy->Allows(olga, Permission::kApprove, At("web", "prod")));
}

TEST(PolicyTest, GlobsMatchStarAndQuestionMark) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:alice"]
    role: operator
    applications: ["web-*", "api?"]
    environments: ["stag*", "qa-?"]
)");
  ASSERT_NE(policy, nullptr);
  const Principal alice = UserPrincipal("alice");
  EXPECT_TRUE(policy->Allows(alice, Permission::kOperate, At("web-frontend", "staging")));
  EXPECT_TRUE(policy->Allows(alice, Permission::kOperate, At("web-", "stag")));
  EXPECT_TRUE(policy->Allows(alice, Permission::kOperate, At("api2", "qa-1")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, At("api", "qa-1")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, At("api22", "qa-1")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, At("web-frontend", "qa-12")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, At("web-frontend", "prod")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, At("xweb-a", "staging")));
}

TEST(PolicyTest, GlobalScopeNeedsEmptyOrStarGlobs) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:everywhere"]
    role: admin
  - subjects: ["user:star"]
    role: admin
    applications: ["*"]
    environments: ["prod", "*"]
  - subjects: ["user:prefix"]
    role: admin
    applications: ["?*", "a*"]
  - subjects: ["user:emptylists"]
    role: admin
    applications: []
    environments: []
)");
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->Allows(UserPrincipal("everywhere"), Permission::kAdmin, Scope::Global()));
  EXPECT_TRUE(policy->Allows(UserPrincipal("star"), Permission::kAdmin, Scope::Global()));
  EXPECT_TRUE(policy->Allows(UserPrincipal("emptylists"), Permission::kAdmin, Scope::Global()));
  // Globs that match every name still do not cover a resource of no application.
  EXPECT_FALSE(policy->Allows(UserPrincipal("prefix"), Permission::kAdmin, Scope::Global()));
  EXPECT_FALSE(policy->Allows(UserPrincipal("prefix"), Permission::kAdmin, At("", "prod")));
  EXPECT_TRUE(policy->Allows(UserPrincipal("prefix"), Permission::kAdmin, At("web", "prod")));
  EXPECT_TRUE(policy->Allows(UserPrincipal("prefix"), Permission::kAdmin, Scope::Any()));
  // An application-only scope (no environment) is covered by the star.
  EXPECT_TRUE(policy->Allows(UserPrincipal("star"), Permission::kAdmin, At("web", "")));
}

TEST(PolicyTest, AnyScopeIsGrantedByAnyBindingWithThePermission) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:alice"]
    role: viewer
  - subjects: ["user:alice"]
    role: approver
    applications: ["billing"]
    environments: ["prod"]
)");
  ASSERT_NE(policy, nullptr);
  const Principal alice = UserPrincipal("alice");
  EXPECT_TRUE(policy->Allows(alice, Permission::kApprove, Scope::Any()));
  EXPECT_TRUE(policy->Allows(alice, Permission::kView, Scope::Any()));
  EXPECT_FALSE(policy->Allows(alice, Permission::kOperate, Scope::Any()));
  EXPECT_FALSE(policy->Allows(alice, Permission::kAdmin, Scope::Any()));
  // Bindings add up: view everywhere, approve only billing in prod.
  EXPECT_TRUE(policy->Allows(alice, Permission::kView, At("web", "staging")));
  EXPECT_TRUE(policy->Allows(alice, Permission::kApprove, At("billing", "prod")));
  EXPECT_FALSE(policy->Allows(alice, Permission::kApprove, At("web", "prod")));
}

// ---- subjects -------------------------------------------------------------

TEST(PolicyTest, GroupSubjectsMatchAnyOfThePrincipalsGroups) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["group:platform", "group:sre"]
    role: operator
)");
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->Allows(UserPrincipal("alice", {"dev", "sre"}), Permission::kOperate, At("web", "prod")));
  EXPECT_TRUE(policy->Allows(UserPrincipal("bob", {"platform"}), Permission::kOperate, At("web", "prod")));
  EXPECT_FALSE(policy->Allows(UserPrincipal("carol", {"dev"}), Permission::kView, Scope::Any()));
  EXPECT_FALSE(policy->Allows(UserPrincipal("carol"), Permission::kView, Scope::Any()));
  // A user named like the group is not in it.
  EXPECT_FALSE(policy->Allows(UserPrincipal("platform"), Permission::kView, Scope::Any()));
}

TEST(PolicyTest, UserAndServiceSubjectsDoNotMatchEachOther) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["service:deployer"]
    role: operator
  - subjects: ["user:ci-bot"]
    role: viewer
)");
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->Allows(ServicePrincipal("deployer"), Permission::kOperate, At("web", "prod")));
  EXPECT_FALSE(policy->Allows(UserPrincipal("deployer"), Permission::kView, Scope::Any()));
  EXPECT_TRUE(policy->Allows(UserPrincipal("ci-bot"), Permission::kView, Scope::Any()));
  EXPECT_FALSE(policy->Allows(ServicePrincipal("ci-bot"), Permission::kView, Scope::Any()));
  EXPECT_FALSE(policy->Allows(ServicePrincipal("planner"), Permission::kView, Scope::Any()));
}

TEST(PolicyTest, ServiceActingForAUserIsMatchedAsTheService) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:alice"]
    role: admin
  - subjects: ["service:deployer"]
    role: viewer
)");
  ASSERT_NE(policy, nullptr);
  Principal deployer_for_alice = ServicePrincipal("deployer");
  deployer_for_alice.acting_for = "alice";
  EXPECT_TRUE(policy->Allows(deployer_for_alice, Permission::kView, Scope::Any()));
  EXPECT_FALSE(policy->Allows(deployer_for_alice, Permission::kAdmin, Scope::Global()));
  Principal planner_for_alice = ServicePrincipal("planner");
  planner_for_alice.acting_for = "alice";
  EXPECT_FALSE(policy->Allows(planner_for_alice, Permission::kView, Scope::Any()));
}

TEST(PolicyTest, AnonymousIsDeniedEvenWhenNamed) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:anonymous", "group:everyone"]
    role: admin
)");
  ASSERT_NE(policy, nullptr);
  Principal anonymous;  // kind kAnonymous
  anonymous.id = "anonymous";
  anonymous.groups = {"everyone"};
  for (Permission p : kAll) {
    EXPECT_FALSE(policy->Allows(anonymous, p, Scope::Any()));
    EXPECT_FALSE(policy->Allows(anonymous, p, Scope::Global()));
    EXPECT_FALSE(policy->Allows(Principal{}, p, Scope::Any()));
  }
}

TEST(PolicyTest, BindingsKeepTheirFields) {
  auto policy = MustParse(R"(
bindings:
  - subjects: ["user:alice", "group:platform", "service:ci"]
    role: approver
    environments: ["prod"]
    applications: ["web", "api"]
)");
  ASSERT_NE(policy, nullptr);
  ASSERT_EQ(policy->bindings().size(), 1u);
  const Binding& b = policy->bindings()[0];
  EXPECT_EQ(b.subjects, (std::vector<std::string>{"user:alice", "group:platform", "service:ci"}));
  EXPECT_EQ(b.role, "approver");
  EXPECT_EQ(b.environments, (std::vector<std::string>{"prod"}));
  EXPECT_EQ(b.applications, (std::vector<std::string>{"web", "api"}));
}

// ---- approvals ------------------------------------------------------------

TEST(PolicyTest, ApprovalRulesPerEnvironment) {
  auto policy = MustParse(R"(
approvals:
  prod:
    required: 2
    distinct_from_author: true
    distinct_from_requester: true
  staging:
    distinct_from_requester: True
  qa:
    required: 3
)");
  ASSERT_NE(policy, nullptr);
  ApprovalRule prod = policy->ApprovalRuleFor("prod");
  EXPECT_EQ(prod.required, 2);
  EXPECT_TRUE(prod.distinct_from_author);
  EXPECT_TRUE(prod.distinct_from_requester);
  ApprovalRule staging = policy->ApprovalRuleFor("staging");
  EXPECT_EQ(staging.required, 1);
  EXPECT_FALSE(staging.distinct_from_author);
  EXPECT_TRUE(staging.distinct_from_requester);
  ApprovalRule qa = policy->ApprovalRuleFor("qa");
  EXPECT_EQ(qa.required, 3);
  EXPECT_FALSE(qa.distinct_from_author);
  EXPECT_FALSE(qa.distinct_from_requester);
  // Exact names only; everything else gets the default.
  for (const char* env : {"dev", "prod-eu", "Prod", ""}) {
    ApprovalRule d = policy->ApprovalRuleFor(env);
    EXPECT_EQ(d.required, 1) << env;
    EXPECT_FALSE(d.distinct_from_author) << env;
    EXPECT_FALSE(d.distinct_from_requester) << env;
  }
}

// ---- OIDC -----------------------------------------------------------------

TEST(PolicyTest, OidcIssuersWithDefaults) {
  auto policy = MustParse(R"(
oidc:
  - issuer: https://idp.example.com
    audience: ferry
    jwks_file: /etc/ferry/jwks.json
  - issuer: https://login.example.org/realms/x
    audience: ferry-api
    jwks_url: https://login.example.org/realms/x/certs
    username_claim: email
    groups_claim: roles
    clock_skew: 2m30s
  - issuer: http://localhost:8080
    audience: dev
    jwks_url: http://127.0.0.1:8080/jwks
    clock_skew: 0s
)");
  ASSERT_NE(policy, nullptr);
  ASSERT_EQ(policy->issuers().size(), 3u);
  const OidcIssuer& a = policy->issuers()[0];
  EXPECT_EQ(a.issuer, "https://idp.example.com");
  EXPECT_EQ(a.audience, "ferry");
  EXPECT_EQ(a.jwks_file, "/etc/ferry/jwks.json");
  EXPECT_EQ(a.jwks_url, "");
  EXPECT_EQ(a.username_claim, "sub");
  EXPECT_EQ(a.groups_claim, "groups");
  EXPECT_EQ(a.clock_skew, absl::Seconds(60));
  const OidcIssuer& b = policy->issuers()[1];
  EXPECT_EQ(b.jwks_file, "");
  EXPECT_EQ(b.jwks_url, "https://login.example.org/realms/x/certs");
  EXPECT_EQ(b.username_claim, "email");
  EXPECT_EQ(b.groups_claim, "roles");
  EXPECT_EQ(b.clock_skew, absl::Seconds(150));
  EXPECT_EQ(policy->issuers()[2].clock_skew, absl::ZeroDuration());
}

struct ErrorCase {
  const char* name;
  const char* text;
  int line;
  const char* problem;
};

class PolicyParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PolicyParseErrorTest, NamesFileLineAndProblem) {
  const ErrorCase& c = GetParam();
  const std::string error = ParseError(c.text);
  EXPECT_THAT(error, HasSubstr(absl::StrCat("policy.yaml:", c.line, ": "))) << error;
  EXPECT_THAT(error, HasSubstr(c.problem)) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, PolicyParseErrorTest,
    ::testing::Values(
        // Structure.
        ErrorCase{"TopLevelList", "- a\n- b\n", 1, "must be a mapping, not a list"},
        ErrorCase{"UnknownTopLevelKey", "bindings: []\npolicies: []\n", 2,
                  "unknown key \"policies\" (expected bindings, approvals, oidc)"},
        ErrorCase{"DuplicateKey", "bindings: []\nbindings: []\n", 2, "key \"bindings\" appears twice"},
        ErrorCase{"BindingsNotAList", "bindings:\n  subjects: [\"user:a\"]\n", 2, "bindings: must be a list"},
        ErrorCase{"BindingNotAMapping", "bindings:\n  - user:alice\n", 2, "bindings[0]: must be a mapping"},
        ErrorCase{"MalformedYaml", "bindings:\n  - subjects: [\"user:a\"\n    role: admin\n", 3, "malformed YAML"},
        ErrorCase{"TwoDocuments", "bindings: []\n---\nbindings: []\n", 3, "more than one YAML document"},
        ErrorCase{"MapKeyNotAString", "? [a]\n: 1\n", 1, "a key must be a string"},
        // Bindings.
        ErrorCase{"UnknownBindingKey", "bindings:\n  - subjects: [\"user:a\"]\n    role: admin\n    roles: [x]\n", 4,
                  "bindings[0]: unknown key \"roles\""},
        ErrorCase{"UnknownRole", "bindings:\n  - subjects: [\"user:a\"]\n    role: owner\n", 3,
                  "bindings[0].role: unknown role \"owner\""},
        ErrorCase{"RoleNotAString", "bindings:\n  - subjects: [\"user:a\"]\n    role: [admin]\n", 3,
                  "bindings[0].role: must be a string, not a list"},
        ErrorCase{"RoleEmpty", "bindings:\n  - subjects: [\"user:a\"]\n    role:\n", 3,
                  "bindings[0].role: has no value"},
        ErrorCase{"BindingsEmpty", "bindings:\napprovals: {}\n", 1, "bindings: has no value"},
        ErrorCase{"SubjectNull", "bindings:\n  - subjects: [\"user:a\", ~]\n    role: admin\n", 2,
                  "bindings[0].subjects[1]: must be a string, not nothing (null)"},
        ErrorCase{"MissingRole", "bindings:\n  - subjects: [\"user:a\"]\n", 2, "bindings[0]: missing key \"role\""},
        ErrorCase{"MissingSubjects", "bindings:\n  - role: admin\n", 2, "bindings[0]: missing key \"subjects\""},
        ErrorCase{"NoSubjects", "bindings:\n  - role: admin\n    subjects: []\n", 3, "must name at least one subject"},
        ErrorCase{"SubjectsAString", "bindings:\n  - role: admin\n    subjects: user:a\n", 3,
                  "bindings[0].subjects: must be a list, not a string"},
        ErrorCase{"BadSubjectForm", "bindings:\n  - role: admin\n    subjects:\n      - user:a\n      - alice\n", 5,
                  "bindings[0].subjects[1]: subject \"alice\" must be user:<name>, group:<name> or service:<name>"},
        ErrorCase{"UnknownSubjectKind", "bindings:\n  - role: admin\n    subjects: [\"team:x\"]\n", 3,
                  "subject \"team:x\" must be user:<name>"},
        ErrorCase{"SubjectWithoutName", "bindings:\n  - role: admin\n    subjects: [\"group:\"]\n", 3,
                  "subject \"group:\" names nobody"},
        ErrorCase{"SubjectGlob", "bindings:\n  - role: admin\n    subjects: [\"user:*\"]\n", 3,
                  "subjects are exact names, not globs"},
        ErrorCase{"SubjectNotAString", "bindings:\n  - role: admin\n    subjects: [{user: a}]\n", 3,
                  "bindings[0].subjects[0]: must be a string, not a mapping"},
        ErrorCase{"BadGlob", "bindings:\n  - role: admin\n    subjects: [\"user:a\"]\n    environments: [\"pr[o]d\"]\n",
                  4, "bindings[0].environments[0]: bad glob \"pr[o]d\""},
        ErrorCase{"EmptyGlob", "bindings:\n  - role: admin\n    subjects: [\"user:a\"]\n    applications: [\"\"]\n", 4,
                  "bindings[0].applications[0]: must not be empty"},
        ErrorCase{"GlobsNotAList", "bindings:\n  - role: admin\n    subjects: [\"user:a\"]\n    applications: web\n", 4,
                  "bindings[0].applications: must be a list, not a string"},
        // Approvals.
        ErrorCase{"RequiredZero", "approvals:\n  prod:\n    required: 0\n", 3,
                  "approvals.prod.required: must be at least 1, not 0"},
        ErrorCase{"RequiredNegative", "approvals:\n  prod:\n    required: -2\n", 3, "must be at least 1, not -2"},
        ErrorCase{"RequiredNotANumber", "approvals:\n  prod:\n    required: two\n", 3,
                  "approvals.prod.required: must be an integer, not \"two\""},
        ErrorCase{"RequiredQuoted", "approvals:\n  prod:\n    required: \"2\"\n", 3,
                  "must be an integer, not the quoted string \"2\""},
        ErrorCase{"DistinctNotABool", "approvals:\n  prod:\n    distinct_from_author: yes\n", 3,
                  "approvals.prod.distinct_from_author: must be true or false, not \"yes\""},
        ErrorCase{"UnknownApprovalKey", "approvals:\n  prod:\n    required: 2\n    four_eyes: true\n", 4,
                  "approvals.prod: unknown key \"four_eyes\""},
        ErrorCase{"ApprovalEnvironmentGlob", "approvals:\n  \"*\":\n    required: 2\n", 3,
                  "approvals.*: environment names here are exact, not globs"},
        ErrorCase{"ApprovalRuleEmpty", "approvals:\n  prod:\n  staging:\n    required: 2\n", 2,
                  "approvals.prod: has no value"},
        ErrorCase{"ApprovalsNotAMapping", "approvals:\n  - prod\n", 2, "approvals: must be a mapping, not a list"},
        // OIDC.
        ErrorCase{"OidcWithoutJwks", "oidc:\n  - issuer: https://idp\n    audience: ferry\n", 2,
                  "oidc[0]: issuer \"https://idp\" needs a JWKS: jwks_file or jwks_url"},
        ErrorCase{"OidcWithBothJwks",
                  "oidc:\n  - issuer: https://idp\n    audience: ferry\n    jwks_file: /j\n    jwks_url: https://idp/j\n", 5,
                  "oidc[0]: has both jwks_file and jwks_url"},
        ErrorCase{"OidcWithoutIssuer", "oidc:\n  - audience: ferry\n    jwks_file: /j\n", 2,
                  "oidc[0]: missing key \"issuer\""},
        ErrorCase{"OidcWithoutAudience", "oidc:\n  - issuer: https://idp\n    jwks_file: /j\n", 2,
                  "oidc[0]: missing key \"audience\""},
        ErrorCase{"OidcUnknownKey", "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_file: /j\n    aud: b\n", 5,
                  "oidc[0]: unknown key \"aud\""},
        ErrorCase{"OidcBadClockSkew",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_file: /j\n    clock_skew: 60\n", 5,
                  "oidc[0].clock_skew: \"60\" is not a duration"},
        ErrorCase{"OidcNegativeClockSkew",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_file: /j\n    clock_skew: -5s\n", 5,
                  "oidc[0].clock_skew: must be between 0s and 1h"},
        ErrorCase{"OidcHugeClockSkew",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_file: /j\n    clock_skew: 48h\n", 5,
                  "must be between 0s and 1h"},
        ErrorCase{"OidcPlainHttpJwks",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_url: http://idp.example.com/jwks\n", 4,
                  "oidc[0].jwks_url: \"http://idp.example.com/jwks\" must be an https:// URL"},
        ErrorCase{"OidcHttpLookalikeHost",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_url: http://localhost.evil.com/jwks\n", 4,
                  "must be an https:// URL"},
        ErrorCase{"OidcEmptyAudience", "oidc:\n  - issuer: https://idp\n    audience: \"\"\n    jwks_file: /j\n", 3,
                  "oidc[0].audience: must not be empty"},
        ErrorCase{"OidcDuplicateIssuer",
                  "oidc:\n  - issuer: https://idp\n    audience: a\n    jwks_file: /j\n"
                  "  - issuer: https://idp\n    audience: b\n    jwks_file: /k\n",
                  5, "oidc[1]: issuer \"https://idp\" is listed twice"},
        ErrorCase{"OidcNotAList", "oidc:\n  issuer: https://idp\n", 2, "oidc: must be a list, not a mapping"}),
    [](const auto& info) { return std::string(info.param.name); });

// ---- bounds ---------------------------------------------------------------

TEST(PolicyTest, RefusesFilesOverOneMebibyte) {
  std::string text = "bindings: []\n";
  text += "# " + std::string(kMaxPolicyBytes, 'x') + "\n";
  auto policy = Policy::Parse(text, "big.yaml");
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(policy.status().message(), HasSubstr("big.yaml: the policy is"));
  EXPECT_THAT(policy.status().message(), HasSubstr("more than the 1048576 allowed"));
}

TEST(PolicyTest, RefusesAliasBombsByCountingNodesAsUsed) {
  // One list of 2,000 subjects, used by 200 bindings: 400,000 nodes if
  // expanded, from a file of 40 KiB.
  std::string text = "bindings:\n  - role: viewer\n    subjects: &s [";
  for (int i = 0; i < 2000; ++i) text += absl::StrCat(i ? "," : "", "\"user:u", i, "\"");
  text += "]\n";
  for (int i = 0; i < 200; ++i) text += "  - role: viewer\n    subjects: *s\n";
  const std::string error = ParseError(text);
  EXPECT_THAT(error, HasSubstr("more than 100000 YAML nodes (aliases counted each time they are used)")) << error;
}

TEST(PolicyTest, NestedAliasBombIsRefusedWithoutExpandingIt) {
  // Twelve levels of four aliases (4^12 subjects if expanded) where the
  // schema wants a list of strings: refused at the first nested list. An
  // alias is the node it names, so the line is the anchor's.
  std::string text = "bindings:\n  - role: admin\n    subjects: &a0 [\"user:a\", \"user:b\"]\n";
  for (int i = 1; i <= 12; ++i) {
    const std::string prev = absl::StrCat("*a", i - 1);
    text += absl::StrCat("  - role: admin\n    subjects: &a", i, " [", prev, ", ", prev, ", ", prev, ", ", prev, "]\n");
  }
  const std::string error = ParseError(text);
  EXPECT_THAT(error, HasSubstr("policy.yaml:3: bindings[1].subjects[0]: must be a string, not a list")) << error;
}

TEST(PolicyTest, RefusesDeepNestingWithoutCrashing) {
  for (const std::string& text : {"bindings: " + std::string(500'000, '['), "bindings: " + std::string(500'000, '{'),
                                  "bindings: " + std::string(2000, '[') + std::string(2000, ']') + "\n"}) {
    const std::string error = ParseError(text);
    EXPECT_THAT(error, HasSubstr("policy.yaml:1: nested deeper than the YAML parser allows")) << error;
  }
}

TEST(PolicyTest, RecursiveAliasIsRefusedByType) {
  const std::string error = ParseError("bindings: &b\n  - role: admin\n    subjects: *b\n");
  EXPECT_THAT(error, HasSubstr("policy.yaml:"));
}

TEST(PolicyTest, AnchorsAndAliasesWithinLimitsAreFine) {
  auto policy = MustParse(R"(
bindings:
  - subjects: &ops ["group:sre", "user:alice"]
    role: operator
  - subjects: *ops
    role: approver
    environments: ["prod"]
)");
  ASSERT_NE(policy, nullptr);
  EXPECT_TRUE(policy->Allows(UserPrincipal("alice"), Permission::kApprove, At("web", "prod")));
  EXPECT_TRUE(policy->Allows(UserPrincipal("x", {"sre"}), Permission::kOperate, At("web", "prod")));
}

}  // namespace
}  // namespace ferry::auth
