// Commit signature checks with keys made by real gpg and ssh-keygen, on
// commits signed by real git.

#include "services/repo-watcher/signature_verifier.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

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

// A real ssh-keygen behind a script that first writes down what it was
// given: its environment and its open descriptors.
class SshKeygenSpy {
 public:
  explicit SshKeygenSpy(const std::string& dir) : dir_(dir) {
    std::ofstream f(path());
    f << "#!/bin/sh\n"
      << "/usr/bin/env >> " << dir_ << "/env-seen\n"
      << "/bin/ls /proc/self/fd >> " << dir_ << "/fds-seen\n"
      << "exec /usr/bin/ssh-keygen \"$@\"\n";
    f.close();
    chmod(path().c_str(), 0755);
  }
  std::string path() const { return dir_ + "/ssh-keygen"; }
  std::string Seen(const std::string& what) const {
    std::ifstream in(dir_ + "/" + what + "-seen");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  std::string dir_;
};

TEST_F(SignatureVerifierTest, SshKeygenDoesNotSeeTheServicesEnvironment) {
  std::string sha = repo_->Commit({{"a", "1"}}, "ssh signed", trusted_ssh_.CommitArgs(), trusted_ssh_.Env());
  git::Commit commit = Read(sha);
  SshKeygenSpy spy(ferry::testing::MakeTempDir("ssh-keygen-spy"));
  GpgmeSshSignatureVerifier verifier(spy.path());
  setenv("FERRY_DATABASE_URL", "postgresql://ferry:secret@db.example/ferry", 1);
  SignatureCheck c = verifier.Verify(commit, policy_);
  unsetenv("FERRY_DATABASE_URL");
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_VALID) << c.reason;
  std::string env = spy.Seen("env");
  ASSERT_NE(env.find("PATH="), std::string::npos) << "the spy did not run";
  EXPECT_EQ(env.find("FERRY_DATABASE_URL"), std::string::npos) << "ssh-keygen saw the service's environment:\n" << env;
  EXPECT_EQ(env.find("secret"), std::string::npos) << env;
}

TEST_F(SignatureVerifierTest, SshKeygenGetsNoDescriptorOfTheService) {
  std::string sha = repo_->Commit({{"a", "1"}}, "ssh signed", trusted_ssh_.CommitArgs(), trusted_ssh_.Env());
  git::Commit commit = Read(sha);
  SshKeygenSpy spy(ferry::testing::MakeTempDir("ssh-keygen-spy"));
  GpgmeSshSignatureVerifier verifier(spy.path());
  int opened = open("/dev/null", O_RDONLY);  // no O_CLOEXEC, like a leaked socket
  ASSERT_GE(opened, 0);
  ASSERT_EQ(dup2(opened, 57), 57);
  close(opened);
  SignatureCheck c = verifier.Verify(commit, policy_);
  close(57);
  EXPECT_EQ(c.result, v1::SIGNATURE_RESULT_VALID) << c.reason;
  std::string fds = spy.Seen("fds");
  ASSERT_FALSE(fds.empty()) << "the spy did not run";
  EXPECT_EQ(fds.find("\n57\n"), std::string::npos) << "ssh-keygen inherited descriptor 57:\n" << fds;
}

}  // namespace
}  // namespace ferry::repo_watcher
