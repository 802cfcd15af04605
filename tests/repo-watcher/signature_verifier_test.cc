// Commit signature checks with keys made by real gpg and ssh-keygen, on
// commits signed by real git.

#include "services/repo-watcher/signature_verifier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/git/libgit2_client.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/repo-watcher/signing_keys.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

using ferry::testing::GitTestRepo;

class SignatureVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("sigs");
    repo_ = std::make_unique<GitTestRepo>(dir_);
    trusted_pgp_ = testing::PgpKey::Generate(dir_ + "/gpg-trusted", "Trusted <trusted@ferry.example>");
    other_pgp_ = testing::PgpKey::Generate(dir_ + "/gpg-other", "Other <other@ferry.example>");
    trusted_ssh_ = testing::SshKey::Generate(dir_ + "/ssh-trusted", "trusted@ferry.example");
    other_ssh_ = testing::SshKey::Generate(dir_ + "/ssh-other", "other@ferry.example");
    policy_.set_mode(v1::SIGNATURE_MODE_HEAD);
    policy_.add_trusted_pgp_public_keys(trusted_pgp_.public_key);
    policy_.add_ssh_allowed_signers(trusted_ssh_.allowed_signer);
  }
  void TearDown() override {
    trusted_pgp_.Stop();
    other_pgp_.Stop();
  }

  git::Commit Read(const std::string& sha) {
    bool rebuilt = false;
    auto mirror = client_.OpenMirror(dir_ + "/mirror.git", repo_->work_path(), &rebuilt);
    EXPECT_TRUE(mirror.ok());
    EXPECT_TRUE((*mirror)->Fetch(repo_->work_path(), {"+refs/heads/main:refs/heads/main"}, {}).ok());
    auto c = (*mirror)->ReadCommit(sha);
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  }

  std::string dir_;
  std::unique_ptr<GitTestRepo> repo_;
  testing::PgpKey trusted_pgp_, other_pgp_;
  testing::SshKey trusted_ssh_, other_ssh_;
  v1::SignaturePolicy policy_;
  git::Libgit2Client client_;
  GpgmeSshSignatureVerifier verifier_;
};

TEST_F(SignatureVerifierTest, PgpSignedByTrustedKeyIsValid) {
  std::string sha = repo_->Commit({{"a", "1"}}, "signed", trusted_pgp_.CommitArgs(), trusted_pgp_.Env());
  SignatureCheck c = verifier_.Verify(Read(sha), policy_);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_VALID) << c.reason;
  EXPECT_EQ(c.type, v1::SIGNATURE_TYPE_PGP);
  EXPECT_EQ(c.signer, trusted_pgp_.fingerprint);
}

TEST_F(SignatureVerifierTest, PgpSignedByUntrustedKeyIsRejected) {
  std::string sha = repo_->Commit({{"a", "1"}}, "signed", other_pgp_.CommitArgs(), other_pgp_.Env());
  SignatureCheck c = verifier_.Verify(Read(sha), policy_);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_UNTRUSTED_KEY) << c.reason;
  EXPECT_FALSE(c.passed());
}

TEST_F(SignatureVerifierTest, UnsignedCommitIsRejected) {
  std::string sha = repo_->Commit({{"a", "1"}}, "unsigned");
  SignatureCheck c = verifier_.Verify(Read(sha), policy_);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_UNSIGNED);
  EXPECT_FALSE(c.passed());
  EXPECT_NE(c.reason.find("not signed"), std::string::npos) << c.reason;
}

TEST_F(SignatureVerifierTest, SshSignedByAllowedSignerIsValid) {
  std::string sha = repo_->Commit({{"a", "1"}}, "ssh signed", trusted_ssh_.CommitArgs(), trusted_ssh_.Env());
  SignatureCheck c = verifier_.Verify(Read(sha), policy_);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_VALID) << c.reason;
  EXPECT_EQ(c.type, v1::SIGNATURE_TYPE_SSH);
  EXPECT_EQ(c.signer, "trusted@ferry.example");
}

TEST_F(SignatureVerifierTest, SshSignedByUnknownKeyIsRejected) {
  std::string sha = repo_->Commit({{"a", "1"}}, "ssh signed", other_ssh_.CommitArgs(), other_ssh_.Env());
  SignatureCheck c = verifier_.Verify(Read(sha), policy_);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_UNTRUSTED_KEY) << c.reason;
}

TEST_F(SignatureVerifierTest, TamperedSignedDataIsInvalid) {
  std::string sha = repo_->Commit({{"a", "1"}}, "ssh signed", trusted_ssh_.CommitArgs(), trusted_ssh_.Env());
  git::Commit c = Read(sha);
  c.signed_data += "tampered";
  EXPECT_EQ(verifier_.Verify(c, policy_).result, v1::SIGNATURE_RESULT_INVALID);
  std::string pgp = repo_->Commit({{"b", "1"}}, "pgp signed", trusted_pgp_.CommitArgs(), trusted_pgp_.Env());
  git::Commit p = Read(pgp);
  p.signed_data += "tampered";
  EXPECT_EQ(verifier_.Verify(p, policy_).result, v1::SIGNATURE_RESULT_INVALID);
}

}  // namespace
}  // namespace ferry::repo_watcher
