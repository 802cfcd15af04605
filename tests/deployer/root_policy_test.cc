// Which directories an environment's rootDir may be (--allowed-roots).

#include "services/deployer/host/root_policy.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "services/deployer/host/host_target.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/host/workload_policy.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;

// As root (CI), workloads of environments without runAs run as the test's
// uid, as before runAs.
WorkloadPolicyOptions AsItself() {
  WorkloadPolicyOptions o;
  o.root_deployer_runs_workloads_as_itself = true;
  return o;
}

WorkloadPolicyOptions Listing(std::vector<std::string> users) {
  WorkloadPolicyOptions o;
  o.allowed_run_as = std::move(users);
  return o;
}

v1::DeployTarget HostAt(const std::string& root) {
  v1::DeployTarget t;
  t.set_kind(v1::TARGET_KIND_HOST);
  t.mutable_host()->set_root_dir(root);
  return t;
}

void ExpectRefused(const absl::StatusOr<std::string>& r, const std::string& root, const std::string& why) {
  ASSERT_FALSE(r.ok()) << root;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_NE(r.status().message().find("target.host.root_dir: \"" + root + "\""), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find(why), std::string::npos) << r.status();
}

TEST(RootPolicyTest, TheWholeMachineIsNeverARoot) {
  std::string base = ferry::testing::MakeTempDir("roots");
  fs::create_directory_symlink("/", base + "/slash");
  for (const RootPolicy& policy : {RootPolicy(), RootPolicy({"/"})}) {
    for (const std::string& root : {std::string("/"), std::string("//"), std::string("/."), base + "/slash"}) {
      ExpectRefused(policy.Check(root), root, "resolves to /");
    }
  }
  ExpectRefused(RootPolicy().Check("/tmp/.."), "/tmp/..", "\"..\"");
  ExpectRefused(RootPolicy().Check("relative/dir"), "relative/dir", "absolute");
}

TEST(RootPolicyTest, AnotherEnvironmentsFerryStateIsNeverARoot) {
  std::string base = ferry::testing::MakeTempDir("roots");
  ExpectRefused(RootPolicy().Check(base + "/env/.ferry/run/app"), base + "/env/.ferry/run/app", ".ferry/run");
}

TEST(RootPolicyTest, RootsMustResolveBeneathAnAllowedRoot) {
  std::string allowed = ferry::testing::MakeTempDir("allowed");
  std::string other = ferry::testing::MakeTempDir("other");
  fs::create_directory_symlink(other, allowed + "/sneaky");
  RootPolicy policy({allowed, "/nonexistent/also-allowed"});
  // Beneath: existing or not yet made.
  EXPECT_TRUE(policy.Check(allowed).ok());
  absl::StatusOr<std::string> env = policy.Check(allowed + "/envs/local");
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(*env, fs::canonical(allowed).string() + "/envs/local");
  EXPECT_TRUE(policy.Check("/nonexistent/also-allowed/x").ok());
  // Outside, directly or through a symlink under an allowed root.
  for (const std::string& root : {other, other + "/env", allowed + "/sneaky/env", std::string("/etc"),
                                  allowed + "-sibling"}) {
    ExpectRefused(policy.Check(root), root, "not beneath any of the deployer's --allowed-roots");
  }
}

TEST(RootPolicyTest, TheFactoryRefusesAPlanWhoseRootIsNotAllowed) {
  std::string allowed = ferry::testing::MakeTempDir("allowed");
  HostTargetFactory factory{RootPolicy({allowed}), WorkloadPolicy(AsItself())};
  absl::StatusOr<Target*> bad = factory.For(HostAt("/etc"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("--allowed-roots"), std::string::npos) << bad.status();
  EXPECT_FALSE(factory.For(HostAt("/")).ok());
  absl::StatusOr<Target*> good = factory.For(HostAt(allowed + "/envs/local/"));
  ASSERT_TRUE(good.ok()) << good.status();
  // One target per resolved root, however it was spelled.
  absl::StatusOr<Target*> again = factory.For(HostAt(allowed + "/envs/./local"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*good, *again);
}

}  // namespace
}  // namespace ferry::deployer::host

namespace ferry::deployer::host {
namespace {

TEST(WorkloadIdentityTest, ResolvesUsersAndGroupsAndNeverRoot) {
  absl::StatusOr<WorkloadIdentity> unset = ResolveWorkloadUser("");
  ASSERT_TRUE(unset.ok());
  EXPECT_FALSE(unset->uid.has_value());
  absl::StatusOr<WorkloadIdentity> nobody = ResolveWorkloadUser("65534:65534");
  ASSERT_TRUE(nobody.ok()) << nobody.status();
  EXPECT_EQ(*nobody->uid, 65534u);
  EXPECT_EQ(nobody->gid, 65534u);
  absl::StatusOr<WorkloadIdentity> named = ResolveWorkloadUser("nobody");
  ASSERT_TRUE(named.ok()) << named.status();
  EXPECT_EQ(*named->uid, 65534u);
  for (const std::string& root : {std::string("root"), std::string("0"), std::string("65534:0"),
                                  std::string("nobody:root")}) {
    absl::StatusOr<WorkloadIdentity> r = ResolveWorkloadUser(root);
    ASSERT_FALSE(r.ok()) << root;
    EXPECT_NE(r.status().message().find("--workload-user: \"" + root + "\" is root"), std::string::npos)
        << r.status();
  }
  absl::StatusOr<WorkloadIdentity> unknown = ResolveWorkloadUser("no-such-user-here");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("names no user"), std::string::npos) << unknown.status();
}

v1::HostTargetConfig RunAs(const std::string& user, const std::string& group = "", bool allow_root = false) {
  v1::HostTargetConfig host;
  host.set_root_dir("/srv/env");
  if (!user.empty() || !group.empty() || allow_root) {
    host.mutable_run_as()->set_user(user);
    host.mutable_run_as()->set_group(group);
    host.mutable_run_as()->set_allow_root(allow_root);
  }
  return host;
}

void ExpectPolicyRefusal(const absl::StatusOr<WorkloadIdentity>& r, const std::vector<std::string>& words) {
  ASSERT_FALSE(r.ok()) << "allowed as uid " << (r.ok() && r->uid ? static_cast<int64_t>(*r->uid) : -1);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  for (const std::string& w : words) EXPECT_NE(r.status().message().find(w), std::string::npos) << w << ": " << r.status();
}

// As a root deployer (uid 0 given, so it runs unprivileged too).
TEST(WorkloadPolicyTest, ARootDeployerWithoutRunAsOrWorkloadUserRefuses) {
  WorkloadPolicy root_deployer({}, 0, 0, true);
  ExpectPolicyRefusal(root_deployer.For(RunAs("")), {"target.host.run_as", "runAs", "--workload-user", "root"});
  absl::StatusOr<WorkloadIdentity> env = root_deployer.For(RunAs("65534"));
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ(*env->uid, 65534u);
  WorkloadPolicyOptions flag;
  flag.default_identity = *ResolveWorkloadUser("65534:65534");
  absl::StatusOr<WorkloadIdentity> fallback = WorkloadPolicy(flag, 0, 0, true).For(RunAs(""));
  ASSERT_TRUE(fallback.ok()) << fallback.status();
  EXPECT_EQ(*fallback->uid, 65534u);
  // The environment's runAs wins over --workload-user.
  absl::StatusOr<WorkloadIdentity> own = WorkloadPolicy(flag, 0, 0, true).For(RunAs("4242", "4343"));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own->uid, 4242u);
  EXPECT_EQ(own->gid, 4343u);
  // Tests and trials only: explicitly as root.
  absl::StatusOr<WorkloadIdentity> insecure =
      WorkloadPolicy(AsItself(), 0, 0, true).For(RunAs(""));
  ASSERT_TRUE(insecure.ok());
  EXPECT_FALSE(insecure->uid.has_value());
}

TEST(WorkloadPolicyTest, ARunAsOfRootNeedsAllowRootAndTheDeployersFlag) {
  WorkloadPolicy plain({}, 0, 0, true);
  for (const auto& [user, group] : std::vector<std::pair<std::string, std::string>>{
           {"root", ""}, {"0", ""}, {"65534", "0"}, {"nobody", "root"}}) {
    ExpectPolicyRefusal(plain.For(RunAs(user, group)), {"target.host.run_as", "is root", "--allow-root-workloads"});
    ExpectPolicyRefusal(plain.For(RunAs(user, group, true)), {"--allow-root-workloads (it is not)"});
  }
  WorkloadPolicyOptions allow_root;
  allow_root.allow_root = true;
  WorkloadPolicy allowing(allow_root, 0, 0, true);
  ExpectPolicyRefusal(allowing.For(RunAs("root")), {"runAs.allowRoot (it does not)"});
  absl::StatusOr<WorkloadIdentity> root = allowing.For(RunAs("root", "", true));
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root->uid, 0u);
}

TEST(WorkloadPolicyTest, AllowedRunAsListsWhoGitMayName) {
  WorkloadPolicy listed(Listing({"nobody", "4242"}), 0, 0, true);
  ASSERT_TRUE(listed.Check().ok());
  EXPECT_TRUE(listed.For(RunAs("nobody")).ok());
  EXPECT_TRUE(listed.For(RunAs("65534")).ok()) << "the uid of a listed name";
  EXPECT_TRUE(listed.For(RunAs("4242", "4242")).ok());
  ExpectPolicyRefusal(listed.For(RunAs("4343")), {"target.host.run_as: user \"4343\"", "--allowed-run-as"});
  // --workload-user is the operator's own choice, not Git's: not limited.
  EXPECT_FALSE(WorkloadPolicy(Listing({"no-such-user-here"}), 0, 0, true).Check().ok());
  EXPECT_FALSE(WorkloadPolicy(Listing({"root"}), 0, 0, true).Check().ok());
  ExpectPolicyRefusal(listed.For(RunAs("no-such-user-here")), {"names no user"});
}

// A non-root deployer cannot change uid: without runAs its workloads run as
// its own uid; a runAs naming another user is refused, its own uid is fine.
TEST(WorkloadPolicyTest, ANonRootDeployerRunsWorkloadsAsItselfAndRefusesOtherUsers) {
  WorkloadPolicy user_deployer({}, 1000, 1000, false);
  absl::StatusOr<WorkloadIdentity> self = user_deployer.For(RunAs(""));
  ASSERT_TRUE(self.ok()) << self.status();
  EXPECT_FALSE(self->uid.has_value());
  absl::StatusOr<WorkloadIdentity> same = user_deployer.For(RunAs("1000", "1000"));
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_FALSE(same->uid.has_value()) << "nothing to switch";
  ExpectPolicyRefusal(user_deployer.For(RunAs("65534")), {"target.host.run_as", "cannot run workloads as another user"});
  WorkloadPolicyOptions flag;
  flag.default_identity = *ResolveWorkloadUser("65534");
  EXPECT_FALSE(WorkloadPolicy(flag, 1000, 1000, false).Check().ok());
  // With CAP_SETUID and CAP_SETGID it can.
  EXPECT_TRUE(WorkloadPolicy({}, 1000, 1000, true).For(RunAs("65534")).ok());
}

TEST(WorkloadPolicyTest, TheFactoryGivesEachIdentityItsOwnTargetAndRefusesWhatThePolicyRefuses) {
  std::string allowed = ferry::testing::MakeTempDir("allowed");
  HostTargetFactory factory{RootPolicy({allowed}), WorkloadPolicy({}, 0, 0, true)};
  v1::DeployTarget t = HostAt(allowed + "/env");
  absl::StatusOr<Target*> refused = factory.For(t);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("--workload-user"), std::string::npos) << refused.status();
  *t.mutable_host() = RunAs("4242");
  t.mutable_host()->set_root_dir(allowed + "/env");
  absl::StatusOr<Target*> a = factory.For(t);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*factory.For(t), *a);
  t.mutable_host()->mutable_run_as()->set_user("4343");
  absl::StatusOr<Target*> b = factory.For(t);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(*a, *b) << "a changed runAs is another target";
  t.mutable_host()->mutable_run_as()->set_user("root");
  EXPECT_FALSE(factory.For(t).ok());
}

}  // namespace
}  // namespace ferry::deployer::host
