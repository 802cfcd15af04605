// Where secret references may point (#17): only the secrets directory and
// variables with the configured prefix; credentials only to the origin they
// were given for; never a token over plain HTTP. Checked when a repository
// is registered or updated, and again before anything is sent.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_registry.h"
#include "services/repo-watcher/repository_spec.h"
#include "services/repo-watcher/secrets.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

using secrets::SecretSources;

constexpr char kCheckpointKey[] = "-----BEGIN PRIVATE KEY----- checkpoint-signing-key";
constexpr char kDatabaseUrl[] = "postgres://ferry:db-password-77@127.0.0.1/ferry";

class SecretSourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::MakeTempDir("secret-sources");
    dir_ = root_ + "/secrets";
    outside_ = root_ + "/state";
    std::filesystem::create_directories(dir_);
    std::filesystem::create_directories(outside_);
    std::ofstream(dir_ + "/git-token") << "tok-in-dir\n";
    std::ofstream(outside_ + "/checkpoint.pem") << kCheckpointKey << "\n";
    setenv("FERRY_DATABASE_URL", kDatabaseUrl, 1);
    setenv("FERRY_SECRET_GIT_TOKEN", "tok-in-env", 1);
    absl::StatusOr<secrets::SecretSources> s = secrets::SecretSources::Create({.secrets_dir = dir_});
    ASSERT_TRUE(s.ok()) << s.status();
    sources_ = std::make_unique<secrets::SecretSources>(*s);
  }

  static v1::SecretRef File(const std::string& path) {
    v1::SecretRef r;
    r.set_file(path);
    return r;
  }
  static v1::SecretRef Env(const std::string& name) {
    v1::SecretRef r;
    r.set_env(name);
    return r;
  }

  // Refused with INVALID_ARGUMENT naming `field`, without the secret.
  void ExpectRefused(const v1::SecretRef& ref, const std::string& field) {
    absl::StatusOr<std::string> v = sources_->Read(ref, "token");
    ASSERT_FALSE(v.ok()) << ref.DebugString() << " was read: " << *v;
    EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument) << v.status();
    EXPECT_EQ(v.status().message().rfind(field + ": ", 0), 0u) << v.status();
    EXPECT_EQ(v.status().message().find("checkpoint-signing-key"), std::string::npos) << v.status();
    EXPECT_EQ(v.status().message().find("db-password"), std::string::npos) << v.status();
  }

  std::string root_, dir_, outside_;
  std::unique_ptr<secrets::SecretSources> sources_;
};

TEST_F(SecretSourcesTest, ReadsAFileInTheDirectoryAndAPrefixedVariable) {
  EXPECT_EQ(*sources_->Read(File(dir_ + "/git-token"), "token"), "tok-in-dir");
  EXPECT_EQ(*sources_->Read(File("git-token"), "token"), "tok-in-dir");
  EXPECT_EQ(*sources_->Read(Env("FERRY_SECRET_GIT_TOKEN"), "token"), "tok-in-env");
}

TEST_F(SecretSourcesTest, RefusesTheCheckpointKeyAndTheDatabaseUrl) {
  ExpectRefused(File(outside_ + "/checkpoint.pem"), "token.file");
  ExpectRefused(File(dir_ + "/../state/checkpoint.pem"), "token.file");
  ExpectRefused(File("../state/checkpoint.pem"), "token.file");
  ExpectRefused(File("/etc/passwd"), "token.file");
  ExpectRefused(Env("FERRY_DATABASE_URL"), "token.env");
  ExpectRefused(Env("PATH"), "token.env");
  ExpectRefused(Env("FERRY_SECRET_"), "token.env");
  ExpectRefused(Env("FERRY_SECRET_X=1"), "token.env");
}

TEST_F(SecretSourcesTest, RefusesASymlinkOutOfTheDirectoryButFollowsOneWithin) {
  ASSERT_EQ(symlink((outside_ + "/checkpoint.pem").c_str(), (dir_ + "/escape").c_str()), 0);
  ASSERT_EQ(symlink(outside_.c_str(), (dir_ + "/escaped-dir").c_str()), 0);
  ASSERT_EQ(symlink((dir_ + "/git-token").c_str(), (dir_ + "/alias").c_str()), 0);
  ExpectRefused(File(dir_ + "/escape"), "token.file");
  ExpectRefused(File("escape"), "token.file");
  ExpectRefused(File(dir_ + "/escaped-dir/checkpoint.pem"), "token.file");
  EXPECT_EQ(*sources_->Read(File(dir_ + "/alias"), "token"), "tok-in-dir");
  absl::StatusOr<std::string> key = sources_->ResolveFile(dir_ + "/escape", "private_key_file");
  EXPECT_EQ(key.status().code(), absl::StatusCode::kInvalidArgument) << key.status();
}

TEST_F(SecretSourcesTest, RefusesWhatIsNotARegularFile) {
  std::filesystem::create_directories(dir_ + "/sub");
  ASSERT_EQ(mkfifo((dir_ + "/fifo").c_str(), 0600), 0);
  ExpectRefused(File(dir_ + "/sub"), "token.file");
  ExpectRefused(File(dir_ + "/fifo"), "token.file");
  ExpectRefused(File(dir_ + "/missing"), "token.file");
  ExpectRefused(File(dir_), "token.file");
  std::ofstream(dir_ + "/huge") << std::string(secrets::kMaxSecretBytes + 1, 'x');
  ExpectRefused(File(dir_ + "/huge"), "token.file");
}

TEST_F(SecretSourcesTest, WithoutSourcesEveryReferenceIsRefused) {
  sources_ = std::make_unique<secrets::SecretSources>(*secrets::SecretSources::Create({.secrets_dir = "", .env_prefix = ""}));
  ExpectRefused(File(dir_ + "/git-token"), "token.file");
  ExpectRefused(Env("FERRY_SECRET_GIT_TOKEN"), "token.env");
  EXPECT_FALSE(secrets::SecretSources::Create({.secrets_dir = root_ + "/nope"}).ok());
}

TEST(UrlOriginTest, IsSchemeHostAndPort) {
  EXPECT_EQ(UrlOrigin("https://Git.Example.com/o/r.git"), "https://git.example.com");
  EXPECT_EQ(UrlOrigin("https://git.example.com:443/o/r.git"), "https://git.example.com");
  EXPECT_EQ(UrlOrigin("https://git.example.com:8443/o/r.git"), "https://git.example.com:8443");
  EXPECT_EQ(UrlOrigin("ssh://git@h.example:2222/o/r.git"), "ssh://h.example:2222");
  EXPECT_EQ(UrlOrigin("git@github.com:org/repo.git"), "ssh://github.com");
  EXPECT_EQ(UrlOrigin("/srv/git/r.git"), "file://");
  EXPECT_NE(UrlOrigin("https://a.example/r.git"), UrlOrigin("https://a.example.evil.example/r.git"));
}

v1::SecretRef Vault(const std::string& path, const std::string& field) {
  v1::SecretRef r;
  r.mutable_vault()->set_path(path);
  r.mutable_vault()->set_field(field);
  return r;
}

TEST_F(SecretSourcesTest, ReadsAVaultReferenceThroughTheConfiguredLookup) {
  std::vector<std::pair<std::string, std::string>> asked;
  absl::StatusOr<SecretSources> s = SecretSources::Create(
      {.secrets_dir = "", .vault = [&](const std::string& path, const std::string& field) -> absl::StatusOr<std::string> {
        asked.emplace_back(path, field);
        if (path == "team/git" && field == "token") return std::string("tok-in-vault");
        if (path == "down") return absl::UnavailableError("vault: GET .../down: Connection refused");
        if (path == "denied") return absl::PermissionDeniedError("vault: reading secret \"secret/denied\" was refused");
        return absl::NotFoundError("vault: no secret at \"secret/" + path + "\"");
      }});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s->Read(Vault("team/git", "token"), "token"), "tok-in-vault");
  ASSERT_EQ(asked.size(), 1u);
  EXPECT_EQ(asked[0], std::make_pair(std::string("team/git"), std::string("token")));

  absl::Status missing = s->Read(Vault("team/nope", "token"), "token").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument) << missing;
  EXPECT_EQ(missing.message(), "token.vault: vault: no secret at \"secret/team/nope\"");
  absl::Status denied = s->Read(Vault("denied", "token"), "token").status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kInvalidArgument) << denied;
  // Vault down is not the reference's fault: retry later.
  absl::Status down = s->Read(Vault("down", "token"), "token").status();
  EXPECT_EQ(down.code(), absl::StatusCode::kUnavailable) << down;
  EXPECT_EQ(down.message().rfind("token.vault: ", 0), 0u) << down;
}

TEST_F(SecretSourcesTest, AVaultOutageFailsTheCredentialsAsUnavailableNotAsABadReference) {
  absl::StatusOr<SecretSources> s = SecretSources::Create(
      {.secrets_dir = "", .vault = [](const std::string&, const std::string&) -> absl::StatusOr<std::string> {
        return absl::UnavailableError("vault: GET https://vault:8200/v1/secret/data/team/git: Connection refused");
      }});
  ASSERT_TRUE(s.ok()) << s.status();
  v1::Repository r;
  r.set_id("apps");
  r.set_url("https://git.example.com/org/apps.git");
  r.mutable_credentials()->mutable_https_token()->mutable_token()->mutable_vault()->set_path("team/git");
  r.mutable_credentials()->mutable_https_token()->mutable_token()->mutable_vault()->set_field("token");
  absl::StatusOr<git::Credentials> creds = ResolveCredentials(r, *s);
  EXPECT_EQ(creds.status().code(), absl::StatusCode::kUnavailable) << creds.status();
  EXPECT_EQ(creds.status().message().rfind("credentials not used, nothing sent: repository.credentials.https_token."
                                           "token.vault: vault: GET ",
                                           0),
            0u)
      << creds.status();
}

TEST_F(SecretSourcesTest, VaultReferencesAreRefusedWithoutVault) {
  ExpectRefused(Vault("team/git", "token"), "token.vault");
  absl::Status s = sources_->Read(Vault("team/git", "token"), "token").status();
  EXPECT_NE(s.message().find("--vault-address"), std::string::npos) << s;
}

TEST_F(SecretSourcesTest, ATokenIsNeverSentOverPlainHttp) {
  v1::Repository r;
  r.set_id("apps");
  r.set_url("http://git.example.com/o/r.git");
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file("git-token");
  absl::Status s = ValidateAndNormalize(r, *sources_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message().rfind("repository.credentials.https_token: ", 0), 0u) << s;
  r.set_url("http://127.0.0.1:8080/r.git");
  EXPECT_EQ(ValidateAndNormalize(r, *sources_).code(), absl::StatusCode::kInvalidArgument) << "loopback without the flag";

  secrets::SecretSources test_only =
      *secrets::SecretSources::Create({.secrets_dir = dir_, .allow_http_token_to_loopback = true});
  EXPECT_TRUE(ValidateAndNormalize(r, test_only).ok()) << ValidateAndNormalize(r, test_only);
  r.set_url("http://git.example.com/o/r.git");
  EXPECT_EQ(ValidateAndNormalize(r, test_only).code(), absl::StatusCode::kInvalidArgument) << "only loopback";
  // The same check before a fetch (a spec stored before the rule).
  absl::StatusOr<git::Credentials> creds = ResolveCredentials(r, *sources_);
  EXPECT_EQ(creds.status().code(), absl::StatusCode::kFailedPrecondition) << creds.status();
}

// The registry over an in-memory store; the poller over it and a Git client
// that counts what it was asked to do.
class MemoryStore final : public RepositoryStore {
 public:
  std::map<std::string, v1::Repository> repos;
  std::vector<v1::Event> events;
  std::vector<CheckRecord> checks;

  absl::StatusOr<v1::Repository> Create(const v1::Repository& repo, const v1::Event& audit) override {
    if (repos.count(repo.id()) > 0) return absl::AlreadyExistsError("taken");
    repos[repo.id()] = repo;
    events.push_back(audit);
    return repo;
  }
  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    auto it = repos.find(id);
    if (it == repos.end()) return absl::NotFoundError("no such repository");
    return it->second;
  }
  absl::StatusOr<v1::Repository> Update(const v1::Repository& repo, const v1::Repository&,
                                        const v1::Event& audit) override {
    repos[repo.id()] = repo;
    events.push_back(audit);
    return repo;
  }
  absl::Status RecordEvent(const v1::Event& e) override {
    events.push_back(e);
    return absl::OkStatus();
  }
  absl::StatusOr<v1::RepositoryStatus> GetStatus(const std::string& id) override {
    v1::RepositoryStatus s;
    s.set_repository_id(id);
    return s;
  }
  absl::Status RecordCheck(const CheckRecord& r, const std::optional<v1::Event>&) override {
    checks.push_back(r);
    return absl::OkStatus();
  }
  absl::Status RecordChecks(const std::vector<CheckRecord>& records) override {
    checks.insert(checks.end(), records.begin(), records.end());
    return absl::OkStatus();
  }
  absl::StatusOr<bool> WithRepositoryLock(const std::string&, const std::function<void()>& fn) override {
    fn();
    return true;
  }
  absl::StatusOr<std::vector<v1::Repository>> List(const std::string&, int) override { return Unused(); }
  absl::Status Delete(const std::string&, const v1::Event&) override { return Unused(); }
  absl::StatusOr<v1::Revision> RecordRevision(const v1::Revision&, const std::string&, const v1::Event&) override {
    return Unused();
  }
  absl::Status DropRefState(const std::string&, const std::string&) override { return Unused(); }
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t, const std::vector<std::string>&, bool,
                                                           int) override {
    return Unused();
  }
  absl::StatusOr<std::vector<v1::Revision>> ListRevisions(const RevisionQuery&) override { return Unused(); }

 private:
  static absl::Status Unused() { return absl::UnimplementedError("not used by these tests"); }
};

class CountingGit final : public git::Client {
 public:
  int calls = 0;
  std::vector<git::Credentials> sent;
  absl::StatusOr<std::vector<git::RemoteRef>> ListRemoteRefs(const std::string&,
                                                             const git::Credentials& credentials) override {
    ++calls;
    sent.push_back(credentials);
    return absl::UnavailableError("no network in this test");
  }
  absl::StatusOr<std::unique_ptr<git::Repository>> OpenMirror(const std::string&, const std::string&,
                                                              bool*) override {
    ++calls;
    return absl::UnavailableError("no mirrors in this test");
  }
  absl::StatusOr<std::unique_ptr<git::Repository>> OpenExistingMirror(const std::string&,
                                                                      const std::string&) override {
    ++calls;
    return absl::UnavailableError("no mirrors in this test");
  }
};

class CredentialBindingTest : public SecretSourcesTest {
 protected:
  v1::Repository WithToken(const std::string& url) {
    v1::Repository r;
    r.set_id("apps");
    r.set_url(url);
    r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file("git-token");
    return r;
  }
  absl::StatusOr<v1::Repository> Update(const v1::Repository& changes, const std::vector<std::string>& mask) {
    return registry_.Update(changes, mask, v1::Actor());
  }
  absl::Status Poll() { return poller_.Poll("apps").status; }

  static std::string BoundDir() {
    std::string dir = testing::MakeTempDir("binding");
    std::ofstream(dir + "/git-token") << "tok-bound\n";
    return dir;
  }

  // Declared first: the members below keep pointers to it.
  const std::string bound_dir_ = BoundDir();
  const secrets::SecretSources bound_ = *secrets::SecretSources::Create({.secrets_dir = bound_dir_});
  MemoryStore store_;
  RepositoryRegistry registry_{&store_, &bound_, {}};
  CountingGit git_;
  testing::FakeClock clock_;
  prometheus::Registry prometheus_;
  RepoWatcherMetrics metrics_{prometheus_};
  MirrorSet mirrors_{&git_, testing::MakeTempDir("binding-cache")};
  RepoPoller poller_{&store_, &git_, &mirrors_, nullptr, nullptr, &metrics_, &clock_, &bound_};
};

TEST_F(CredentialBindingTest, RegistrationRefusesForbiddenReferencesAndAuditsTheRefusal) {
  v1::Repository r = WithToken("https://git.example.com/o/r.git");
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file(outside_ + "/checkpoint.pem");
  absl::StatusOr<v1::Repository> out = registry_.Create(r, v1::Actor());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_EQ(out.status().message().rfind("repository.credentials.https_token.token.file: ", 0), 0u) << out.status();
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_env("FERRY_DATABASE_URL");
  out = registry_.Create(r, v1::Actor());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_EQ(out.status().message().rfind("repository.credentials.https_token.token.env: ", 0), 0u) << out.status();
  r = WithToken("https://git.example.com/o/r.git");
  r.clear_credentials();
  r.mutable_webhook_secret()->set_env("FERRY_DATABASE_URL");
  EXPECT_EQ(registry_.Create(r, v1::Actor()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_.repos.empty()) << "nothing registered";
  ASSERT_EQ(store_.events.size(), 3u);
  for (const v1::Event& e : store_.events) {
    EXPECT_EQ(e.details().fields().at("outcome").string_value(), "rejected");
    EXPECT_EQ(e.DebugString().find("db-password"), std::string::npos);
    EXPECT_EQ(e.DebugString().find("checkpoint-signing-key"), std::string::npos);
  }
}

TEST_F(CredentialBindingTest, ChangingTheHostRequiresTheCredentialsAgain) {
  v1::Repository r = WithToken("https://git.example.com/o/r.git");
  r.mutable_credentials()->set_origin("https://evil.example");  // output only: ignored
  absl::StatusOr<v1::Repository> created = registry_.Create(r, v1::Actor());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->credentials().origin(), "https://git.example.com");

  v1::Repository moved;
  moved.set_id("apps");
  moved.set_url("https://attacker.example/o/r.git");
  absl::StatusOr<v1::Repository> out = Update(moved, {"url"});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << out.status();
  EXPECT_EQ(out.status().message().rfind("repository.url: changing the origin from https://git.example.com to "
                                         "https://attacker.example requires giving the credentials again",
                                         0),
            0u)
      << out.status();
  EXPECT_EQ(store_.repos["apps"].url(), "https://git.example.com/o/r.git") << "nothing changed";
  EXPECT_EQ(store_.events.back().details().fields().at("outcome").string_value(), "rejected");
  moved.set_url("https://git.example.com:8443/o/r.git");
  EXPECT_EQ(Update(moved, {"url"}).status().code(), absl::StatusCode::kInvalidArgument) << "another port";

  // Another path on the same origin keeps the credentials.
  moved.set_url("https://git.example.com/o/other.git");
  ASSERT_TRUE(Update(moved, {"url"}).ok());
  // With the credentials given again, the move is allowed and rebinds them.
  moved = WithToken("https://new-host.example/o/r.git");
  out = Update(moved, {"url", "credentials"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->credentials().origin(), "https://new-host.example");
}

// Already-stored references are checked again before anything is sent: a
// spec whose reference the sources no longer allow, or whose URL no longer
// matches the origin its credentials were given for, fails the check
// without the Git client being asked to connect.
TEST_F(CredentialBindingTest, AStoredForbiddenReferenceOrMovedHostFailsWithoutANetworkAttempt) {
  v1::Repository r = WithToken("https://git.example.com/o/r.git");
  r.mutable_credentials()->set_origin("https://git.example.com");
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file(outside_ + "/checkpoint.pem");
  store_.repos["apps"] = r;
  absl::Status s = Poll();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("repository.credentials.https_token.token.file"), std::string::npos) << s;
  EXPECT_EQ(git_.calls, 0) << "nothing may be sent";

  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_env("FERRY_DATABASE_URL");
  store_.repos["apps"] = r;
  EXPECT_EQ(Poll().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(git_.calls, 0);

  r = WithToken("https://attacker.example/o/r.git");
  r.mutable_credentials()->set_origin("https://git.example.com");
  store_.repos["apps"] = r;
  s = Poll();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_NE(s.message().find("given for https://git.example.com"), std::string::npos) << s;
  EXPECT_EQ(git_.calls, 0);
  ASSERT_FALSE(store_.checks.empty());
  EXPECT_FALSE(store_.checks.back().error.empty()) << "the failure is in the repository's status";

  // The same spec bound to its own origin reaches the Git client, token and all.
  r.mutable_credentials()->set_origin("https://attacker.example");
  store_.repos["apps"] = r;
  (void)Poll();
  ASSERT_EQ(git_.calls, 1);
  EXPECT_EQ(git_.sent[0].password, "tok-bound");
}

}  // namespace
}  // namespace ferry::repo_watcher
