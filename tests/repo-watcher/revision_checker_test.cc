// CheckRevision's logic (RevisionChecker) on a real mirror of a real Git
// repository, with commits signed by real ssh-keygen and gpg keys and the
// real verifier; only the store is a fake.

#include "services/repo-watcher/revision_checker.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "common/git/libgit2_client.h"
#include "tests/repo-watcher/unused_repository_store.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/repo-watcher/signing_keys.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

using ferry::testing::GitTestRepo;

// The two reads RevisionChecker makes: the repository and its ref states.
class FakeStore final : public UnusedRepositoryStore {
 public:
  FakeStore() : UnusedRepositoryStore("RevisionChecker") {}
  std::map<std::string, v1::Repository> repos;
  std::map<std::string, v1::RepositoryStatus> statuses;

  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    auto it = repos.find(id);
    if (it == repos.end()) return absl::NotFoundError("repository \"" + id + "\" not found");
    return it->second;
  }
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string& id) override {
    if (!repos.count(id)) return absl::NotFoundError("repository \"" + id + "\" not found");
    return statuses[id];
  }
};

class RevisionCheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("revcheck");
    repo_ = std::make_unique<GitTestRepo>(dir_ + "/remote");
    alice_ = testing::SshKey::Generate(dir_ + "/ssh-alice", "alice@ferry.example");
    mallory_ = testing::SshKey::Generate(dir_ + "/ssh-mallory", "mallory@ferry.example");
    mirrors_ = std::make_unique<MirrorSet>(&git_, dir_ + "/cache");
    checker_ = std::make_unique<RevisionChecker>(&store_, mirrors_.get(), &verifier_);
  }

  // Registers repository "apps" with `policy` (alice's SSH key trusted).
  void Register(v1::SignatureMode mode) {
    v1::Repository repo;
    repo.set_id("apps");
    repo.set_url(repo_->remote_path());
    repo.mutable_signature_policy()->set_mode(mode);
    repo.mutable_signature_policy()->add_ssh_allowed_signers(alice_.allowed_signer);
    store_.repos["apps"] = repo;
  }
  // Pushes main and fetches it into the mirror, as the poller would.
  void PushAndMirror() {
    repo_->Push("main");
    absl::StatusOr<MirrorSet::Lease> lease = mirrors_->Open("apps", repo_->remote_path());
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_TRUE(lease->repo->Fetch(repo_->remote_path(), {"+refs/heads/*:refs/heads/*"}, {}).ok());
  }
  // The poller accepted `sha` as the tip of main.
  void Accepted(const std::string& sha) {
    v1::RefState* ref = store_.statuses["apps"].add_refs();
    ref->set_ref("refs/heads/main");
    ref->set_sha(sha);
    ref->set_accepted_sha(sha);
  }
  std::string Signed(const std::string& content, const testing::SshKey& key) {
    return repo_->Commit({{"f", content}}, "signed " + content, key.CommitArgs(), key.Env());
  }
  std::string Unsigned(const std::string& content) { return repo_->Commit({{"f", content}}, "unsigned " + content); }

  std::string dir_;
  std::unique_ptr<GitTestRepo> repo_;
  testing::SshKey alice_, mallory_;
  FakeStore store_;
  git::Libgit2Client git_;
  GpgmeSshSignatureVerifier verifier_;
  std::unique_ptr<MirrorSet> mirrors_;
  std::unique_ptr<RevisionChecker> checker_;
};

TEST_F(RevisionCheckerTest, WithoutASignaturePolicyEveryCommitInTheMirrorIsAccepted) {
  Register(v1::SIGNATURE_MODE_NONE);
  std::string c1 = Unsigned("1");
  PushAndMirror();
  auto verdict = checker_->Check("apps", c1);
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_TRUE(verdict->accepted());
  EXPECT_EQ(verdict->reason(), "signature policy is none");
  EXPECT_EQ(verdict->signature_result(), v1::SIGNATURE_RESULT_NOT_CHECKED);
}

TEST_F(RevisionCheckerTest, HeadPolicyAcceptsATrustedSignatureAndRefusesUnsignedAndUntrustedCommits) {
  Register(v1::SIGNATURE_MODE_HEAD);
  std::string good = Signed("1", alice_);
  std::string bare = Unsigned("2");
  std::string forged = Signed("3", mallory_);
  PushAndMirror();

  auto accepted = checker_->Check("apps", good);
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_TRUE(accepted->accepted()) << accepted->reason();
  EXPECT_EQ(accepted->signature_result(), v1::SIGNATURE_RESULT_VALID);
  EXPECT_EQ(accepted->signature_type(), v1::SIGNATURE_TYPE_SSH);
  EXPECT_EQ(accepted->signer(), "alice@ferry.example");

  auto unsigned_verdict = checker_->Check("apps", bare);
  ASSERT_TRUE(unsigned_verdict.ok()) << unsigned_verdict.status();
  EXPECT_FALSE(unsigned_verdict->accepted());
  EXPECT_EQ(unsigned_verdict->signature_result(), v1::SIGNATURE_RESULT_UNSIGNED);
  EXPECT_FALSE(unsigned_verdict->reason().empty());

  auto untrusted = checker_->Check("apps", forged);
  ASSERT_TRUE(untrusted.ok()) << untrusted.status();
  EXPECT_FALSE(untrusted->accepted());
  EXPECT_EQ(untrusted->signature_result(), v1::SIGNATURE_RESULT_UNTRUSTED_KEY);
}

TEST_F(RevisionCheckerTest, HeadPolicyAcceptsACommitSignedByATrustedPgpKey) {
  auto pgp = testing::PgpKey::Generate(dir_ + "/gpg-alice", "Alice <alice@ferry.example>");
  std::shared_ptr<void> stop_agent(nullptr, [&](void*) { pgp.Stop(); });
  Register(v1::SIGNATURE_MODE_HEAD);
  store_.repos["apps"].mutable_signature_policy()->add_trusted_pgp_public_keys(pgp.public_key);
  std::string sha = repo_->Commit({{"f", "1"}}, "pgp", pgp.CommitArgs(), pgp.Env());
  PushAndMirror();
  auto verdict = checker_->Check("apps", sha);
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  EXPECT_TRUE(verdict->accepted()) << verdict->reason();
  EXPECT_EQ(verdict->signature_type(), v1::SIGNATURE_TYPE_PGP);
  EXPECT_EQ(verdict->signer(), pgp.fingerprint);
}

TEST_F(RevisionCheckerTest, ACommitNotInTheMirrorOrAnUnknownRepositoryIsNotFound) {
  Register(v1::SIGNATURE_MODE_NONE);
  std::string c1 = Unsigned("1");
  // No mirror yet.
  EXPECT_EQ(checker_->Check("apps", c1).status().code(), absl::StatusCode::kNotFound);
  PushAndMirror();
  std::string later = Unsigned("2");  // committed but never fetched
  auto missing = checker_->Check("apps", later);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
  EXPECT_NE(missing.status().message().find(later), std::string::npos) << missing.status();
  EXPECT_EQ(checker_->Check("apps", std::string(40, 'a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(checker_->Check("other", c1).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(checker_->Check("apps", c1.substr(0, 12)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(checker_->Check("Bad Id", c1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(checker_->Check("apps", c1).ok());
}

TEST_F(RevisionCheckerTest, AllPolicyRefusesASignedCommitBuiltOnAnUnsignedOneSinceTheAcceptedTip) {
  Register(v1::SIGNATURE_MODE_ALL);
  std::string c0 = Signed("0", alice_);
  std::string c1 = Signed("1", alice_);
  std::string sneaky = Unsigned("2");
  std::string c3 = Signed("3", alice_);
  PushAndMirror();
  Accepted(c1);

  auto refused = checker_->Check("apps", c3);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->accepted());
  EXPECT_EQ(refused->signature_result(), v1::SIGNATURE_RESULT_UNSIGNED);
  EXPECT_NE(refused->reason().find("policy ALL"), std::string::npos) << refused->reason();
  EXPECT_NE(refused->reason().find(sneaky), std::string::npos) << refused->reason();

  // The accepted tip and a signed commit of its history (a rollback target).
  for (const std::string& sha : {c1, c0}) {
    auto ok = checker_->Check("apps", sha);
    ASSERT_TRUE(ok.ok()) << ok.status();
    EXPECT_TRUE(ok->accepted()) << sha << ": " << ok->reason();
  }
}

}  // namespace
}  // namespace ferry::repo_watcher
