// Which directories an environment's rootDir may be (--allowed-roots).

#include "services/deployer/host/root_policy.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "services/deployer/host/host_target.h"
#include "services/deployer/host/workload_identity.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;

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
  HostTargetFactory factory{RootPolicy({allowed})};
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

}  // namespace
}  // namespace ferry::deployer::host
