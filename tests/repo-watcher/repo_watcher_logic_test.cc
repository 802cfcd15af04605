// Logic of the repo-watcher without Git or PostgreSQL: validation, path
// checks, webhook authentication and backoff.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <fstream>
#include <map>

#include <prometheus/text_serializer.h>

#include "absl/synchronization/notification.h"
#include "common/git/libgit2_client.h"
#include "services/repo-watcher/content_reader.h"
#include "services/repo-watcher/mirror_set.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_spec.h"
#include "services/repo-watcher/revision_notifier.h"
#include "services/repo-watcher/revision_feed.h"
#include "services/repo-watcher/webhook_handler.h"
#include "tests/repo-watcher/unused_repository_store.h"
#include "tests/support/fake_clock.h"
#include "tests/support/test_database.h"

namespace ferry::repo_watcher {
namespace {

// Sources with no secrets directory and the default prefix.
const secrets::SecretSources& NoSecretSources() {
  static const secrets::SecretSources* sources = new secrets::SecretSources(*secrets::SecretSources::Create({}));
  return *sources;
}

v1::Repository Valid() {
  v1::Repository r;
  r.set_id("apps");
  r.set_url("https://git.example.com/org/apps.git");
  return r;
}

void ExpectInvalid(v1::Repository r, const std::string& field) {
  absl::Status s = ValidateAndNormalize(r, NoSecretSources());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field << ": " << s;
  EXPECT_NE(s.message().find(field), std::string::npos) << "expected field " << field << " in: " << s.message();
}

TEST(RepositorySpecTest, FillsDefaults) {
  v1::Repository r = Valid();
  ASSERT_TRUE(ValidateAndNormalize(r, NoSecretSources()).ok());
  EXPECT_EQ(r.poll_interval().seconds(), 60);
  EXPECT_EQ(r.branches_size(), 1);
  EXPECT_EQ(r.branches(0), "main");
  EXPECT_EQ(r.signature_policy().mode(), v1::SIGNATURE_MODE_NONE);
}

TEST(RepositorySpecTest, AcceptsEveryUrlForm) {
  for (const char* url : {"/srv/git/apps.git", "file:///srv/git/apps.git", "https://h.example/o/r.git",
                          "ssh://git@h.example/o/r.git", "git@github.com:org/repo.git", "http://127.0.0.1:8080/r.git"}) {
    v1::Repository r = Valid();
    r.set_url(url);
    EXPECT_TRUE(ValidateAndNormalize(r, NoSecretSources()).ok()) << url << ": " << ValidateAndNormalize(r, NoSecretSources());
  }
}

// A URL is shown in audit events, API responses and logs, so it may not
// carry a secret: HTTP user info (a token alone works as a user name on
// some hosts) and SSH passwords are refused, without echoing them.
TEST(RepositorySpecTest, RefusesCredentialsInTheUrlWithoutEchoingThem) {
  for (const char* url : {"https://user:s3cr3t@h.example/o/r.git", "https://s3cr3t@h.example/o/r.git",
                          "http://oauth2:s3cr3t@127.0.0.1:8080/r.git", "ssh://git:s3cr3t@h.example/o/r.git"}) {
    v1::Repository r = Valid();
    r.set_url(url);
    absl::Status s = ValidateAndNormalize(r, NoSecretSources());
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(s.message().rfind("repository.url: must not carry", 0), 0u) << s;
    EXPECT_EQ(s.message().find("s3cr3t"), std::string::npos) << s;
  }
}

// std::regex recursed once per character: a 100 KB URL or a 1 MB
// allowed_signers line from any caller overflowed the stack and ended the
// repo-watcher with SIGSEGV. Both are now bounded and matched by RE2.
TEST(RepositorySpecTest, HugeUrlAndSignerLineAreRefusedNotACrash) {
  v1::Repository r = Valid();
  r.set_url("a:" + std::string(100000, 'b'));
  absl::Status s = ValidateAndNormalize(r, NoSecretSources());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_EQ(s.message(), "repository.url: is longer than 2048 bytes");

  r = Valid();
  r.mutable_signature_policy()->set_mode(v1::SIGNATURE_MODE_HEAD);
  r.mutable_signature_policy()->add_ssh_allowed_signers("dev@example.com ssh-ed25519 " + std::string(1 << 20, 'A'));
  s = ValidateAndNormalize(r, NoSecretSources());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s.code();
  EXPECT_EQ(s.message(), "repository.signature_policy.ssh_allowed_signers: a line is longer than 16384 bytes");
}

TEST(RepositorySpecTest, LongInputsWithinTheLimitsAreMatched) {
  v1::Repository r = Valid();
  r.set_url("git@host.example:" + std::string(2000, 'r'));
  EXPECT_TRUE(ValidateAndNormalize(r, NoSecretSources()).ok()) << ValidateAndNormalize(r, NoSecretSources());

  r = Valid();
  r.mutable_signature_policy()->set_mode(v1::SIGNATURE_MODE_HEAD);
  r.mutable_signature_policy()->add_ssh_allowed_signers("dev@example.com ssh-rsa " + std::string(16000, 'A'));
  EXPECT_TRUE(ValidateAndNormalize(r, NoSecretSources()).ok()) << ValidateAndNormalize(r, NoSecretSources());

  r.mutable_signature_policy()->set_ssh_allowed_signers(0, "not a signer line " + std::string(10000, 'x'));
  absl::Status s = ValidateAndNormalize(r, NoSecretSources());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 300u) << "the error quotes the whole line";
}

TEST(RepositorySpecTest, RejectsBadInputNamingTheField) {
  v1::Repository r = Valid();
  r.set_id("Not_A_Label");
  ExpectInvalid(r, "repository.id");
  r = Valid();
  r.set_url("ftp://h.example/r.git");
  ExpectInvalid(r, "repository.url");
  r.set_url("relative/path");
  ExpectInvalid(r, "repository.url");
  r.set_url("https:///nohost");
  ExpectInvalid(r, "repository.url");
  r.set_url("");
  ExpectInvalid(r, "repository.url");
  r = Valid();
  r.mutable_poll_interval()->set_nanos(500000000);
  ExpectInvalid(r, "repository.poll_interval");
  r = Valid();
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file("/nonexistent/token");
  ExpectInvalid(r, "repository.credentials.https_token.token.file");
  r = Valid();
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_env("FERRY_TEST_SURELY_UNSET_VAR");
  ExpectInvalid(r, "repository.credentials.https_token.token.env");
  r = Valid();
  r.set_url("git@h.example:o/r.git");
  r.mutable_credentials()->mutable_ssh_key()->set_private_key_file("/nonexistent/id_ed25519");
  ExpectInvalid(r, "repository.credentials.ssh_key.private_key_file");
  r = Valid();
  r.mutable_webhook_secret()->set_file("/nonexistent/secret");
  ExpectInvalid(r, "repository.webhook_secret.file");
  r = Valid();
  r.mutable_signature_policy()->set_mode(v1::SIGNATURE_MODE_HEAD);
  ExpectInvalid(r, "repository.signature_policy");
  r = Valid();
  r.add_branches("bad..name");
  ExpectInvalid(r, "repository.branches");
}

TEST(RepositorySpecTest, CredentialFileThatExistsIsAccepted) {
  std::string dir = testing::MakeTempDir("spec");
  std::ofstream(dir + "/token") << "s3cret\n";
  absl::StatusOr<secrets::SecretSources> sources = secrets::SecretSources::Create({.secrets_dir = dir});
  ASSERT_TRUE(sources.ok()) << sources.status();
  v1::Repository r = Valid();
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file(dir + "/token");
  EXPECT_TRUE(ValidateAndNormalize(r, *sources).ok()) << ValidateAndNormalize(r, *sources);
  r.mutable_credentials()->mutable_https_token()->mutable_token()->set_file("token");
  EXPECT_TRUE(ValidateAndNormalize(r, *sources).ok()) << "relative to the secrets directory";
}

// repository.git_host (#20): which API, where, which project, which token.
TEST(RepositorySpecTest, GitHostIsValidatedFieldByField) {
  std::string dir = testing::MakeTempDir("spec");
  std::ofstream(dir + "/api-token") << "ghp_s3cret\n";
  absl::StatusOr<secrets::SecretSources> sources = secrets::SecretSources::Create({.secrets_dir = dir});
  ASSERT_TRUE(sources.ok()) << sources.status();
  auto with = [&](v1::GitHostKind kind, const std::string& api, const std::string& project) {
    v1::Repository r = Valid();
    r.mutable_git_host()->set_kind(kind);
    r.mutable_git_host()->set_api_url(api);
    r.mutable_git_host()->set_project(project);
    r.mutable_git_host()->mutable_token()->set_file(dir + "/api-token");
    return r;
  };
  for (v1::Repository r : {with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com", "org/apps"),
                           with(v1::GIT_HOST_KIND_GITLAB, "https://gitlab.example.com/api/v4", "group/sub/apps"),
                           with(v1::GIT_HOST_KIND_GITLAB, "https://gitlab.example.com/api/v4", "1234"),
                           with(v1::GIT_HOST_KIND_GITEA, "http://127.0.0.1:3000/api/v1", "org/apps")}) {
    absl::Status s = ValidateAndNormalize(r, *sources);
    EXPECT_TRUE(s.ok()) << r.git_host().DebugString() << s;
  }
  struct Case {
    v1::Repository repo;
    std::string field;
  };
  v1::Repository no_token = with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com", "org/apps");
  no_token.mutable_git_host()->clear_token();
  v1::Repository outside = with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com", "org/apps");
  outside.mutable_git_host()->mutable_token()->set_file("/etc/passwd");
  const std::vector<Case> cases = {
      {with(v1::GIT_HOST_KIND_UNSPECIFIED, "https://api.github.com", "org/apps"), "repository.git_host.kind: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "http://api.github.com", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "ftp://api.github.com", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "https://user:pw@api.github.com", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "https:///x", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com/?q=1", "org/apps"), "repository.git_host.api_url: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com", ""), "repository.git_host.project: "},
      {with(v1::GIT_HOST_KIND_GITHUB, "https://api.github.com", "apps"), "repository.git_host.project: "},
      {with(v1::GIT_HOST_KIND_GITEA, "https://gitea.example.com/api/v1", "a/b/c"), "repository.git_host.project: "},
      {with(v1::GIT_HOST_KIND_GITLAB, "https://gitlab.example.com/api/v4", "../etc"), "repository.git_host.project: "},
      {no_token, "repository.git_host.token: "},
      {outside, "repository.git_host.token"},
  };
  for (const Case& c : cases) {
    v1::Repository r = c.repo;
    absl::Status s = ValidateAndNormalize(r, *sources);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << c.field << " " << s;
    EXPECT_EQ(s.message().rfind(c.field, 0), 0u) << "want " << c.field << ", got " << s;
    EXPECT_EQ(s.message().find("ghp_s3cret"), std::string::npos);
  }
}

TEST(RepositorySpecTest, TracksBranchAndTagPatterns) {
  v1::Repository r = Valid();
  r.add_branches("main");
  r.add_branches("release/*");
  r.add_tag_patterns("v*");
  EXPECT_TRUE(IsTrackedRef(r, "refs/heads/main"));
  EXPECT_TRUE(IsTrackedRef(r, "refs/heads/release/1.0"));
  EXPECT_FALSE(IsTrackedRef(r, "refs/heads/release/1.0/hotfix"));
  EXPECT_FALSE(IsTrackedRef(r, "refs/heads/feature"));
  EXPECT_TRUE(IsTrackedRef(r, "refs/tags/v1.2.0"));
  EXPECT_FALSE(IsTrackedRef(r, "refs/tags/nightly"));
  EXPECT_FALSE(IsTrackedRef(r, "refs/pull/1/head"));
}

TEST(ContentPathTest, RejectsEscapesAndAbsolutePaths) {
  for (const char* bad : {"..", "../etc/passwd", "apps/../../x", "/etc/passwd", "apps//x", "./apps", "a/./b",
                          "apps\\..\\x", "\\abs"}) {
    absl::StatusOr<std::string> p = NormalizeContentPath(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(*NormalizeContentPath(""), "");
  EXPECT_EQ(*NormalizeContentPath("apps/a/"), "apps/a");
  EXPECT_EQ(*NormalizeContentPath("apps/..data"), "apps/..data");
}

// Counts the repository reads a content read makes.
class CountingGetStore final : public UnusedRepositoryStore {
 public:
  CountingGetStore() : UnusedRepositoryStore("the content reader") {}
  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    ++gets[id];
    if (id != "apps") return absl::NotFoundError(absl::StrCat("repository \"", id, "\" not found"));
    v1::Repository r;
    r.set_id("apps");
    r.set_url("/nonexistent/apps.git");
    return r;
  }
  std::map<std::string, int> gets;
};

// Issue #23: each content read asked the store for its repository first
// (2,650 reads for a commit touching 1,000 applications of a monorepo). A
// repository as read serves the reads of the next second; what this replica
// changes or deletes is forgotten at once, and an unknown id is asked again.
TEST(ContentReaderTest, ARepositoryAsReadServesTheReadsOfTheNextSecond) {
  CountingGetStore store;
  git::Libgit2Client git;
  MirrorSet mirrors(&git, testing::MakeTempDir("content-reader"));
  testing::FakeClock clock;
  ContentReader reader(&store, &mirrors, {}, nullptr, &clock);
  v1::ReadContentRequest req;
  req.set_repository_id("apps");
  req.set_commit(std::string(40, 'a'));
  auto read = [&] { return reader.Read(req, [](const v1::ReadContentResponse&) { return true; }); };
  EXPECT_FALSE(read().ok());  // no mirror here: the read fails after the repository is found
  EXPECT_FALSE(read().ok());
  EXPECT_EQ(store.gets["apps"], 1);
  clock.Advance(ContentReader::kRepositoryKept);
  EXPECT_FALSE(read().ok());
  EXPECT_EQ(store.gets["apps"], 2);
  reader.Forget("apps");
  EXPECT_FALSE(read().ok());
  EXPECT_EQ(store.gets["apps"], 3);
  req.set_repository_id("gone");
  EXPECT_EQ(read().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(read().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store.gets["gone"], 2);
}

// Counts the revision stream's reads of the store.
class CountingRevisionsStore final : public UnusedRepositoryStore {
 public:
  CountingRevisionsStore() : UnusedRepositoryStore("the revision feed") {}
  absl::StatusOr<std::vector<v1::Revision>> RevisionsAfter(int64_t, const std::vector<std::string>&, bool,
                                                            int) override {
    reads.fetch_add(1);
    return std::vector<v1::Revision>();
  }
  std::atomic<int> reads{0};
};

// Issue #23: an open WatchRevisions stream read the store every 500 ms
// with nothing committed (each stream, all day). It reads when the notifier
// signals a commit; between, it only asks whether its client left.
TEST(RevisionFeedTest, AnIdleStreamReadsOnlyWhenSignalledAndStillNoticesItsClientLeaving) {
  CountingRevisionsStore store;
  RevisionNotifier notifier;
  RevisionFeed feed(&store, &notifier);
  std::atomic<bool> gone{false};
  absl::Notification ended;
  std::thread watcher([&] {
    absl::Status s = feed.Watch(v1::WatchRevisionsRequest(), [](const v1::Revision&) { return true; },
                                [&] { return gone.load(); });
    EXPECT_TRUE(s.ok()) << s;
    ended.Notify();
  });
  absl::SleepFor(RevisionNotifier::kCancelCheck * 3);
  EXPECT_EQ(store.reads.load(), 1) << "read again with nothing signalled";
  notifier.Notify();
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_EQ(store.reads.load(), 2) << "a signal must be read at once";
  gone.store(true);
  EXPECT_TRUE(ended.WaitForNotificationWithTimeout(RevisionNotifier::kCancelCheck * 4))
      << "the client's leaving was not noticed";
  watcher.join();
  EXPECT_EQ(store.reads.load(), 2);
}

// Only what the webhook handler touches.
class FakeStore final : public UnusedRepositoryStore {
 public:
  FakeStore() : UnusedRepositoryStore("these tests") {}
  std::map<std::string, v1::Repository> repos;
  std::vector<v1::Event> events;

  absl::StatusOr<v1::Repository> Get(const std::string& id) override {
    auto it = repos.find(id);
    if (it == repos.end()) return absl::NotFoundError("no such repository");
    return it->second;
  }
  absl::Status RecordEvent(const v1::Event& e) override {
    events.push_back(e);
    return absl::OkStatus();
  }
};

class WebhookHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ + "/secret") << "hunter2\n";
    v1::Repository r = Valid();
    r.add_branches("main");  // as stored: ValidateAndNormalize's default
    r.mutable_webhook_secret()->set_file(dir_ + "/secret");
    store_.repos["apps"] = r;
    v1::Repository no_secret = Valid();
    no_secret.set_id("quiet");
    store_.repos["quiet"] = no_secret;
  }
  WebhookRequest Request(const std::string& provider, std::map<std::string, std::string> headers) {
    return WebhookRequest{provider, "apps", std::move(headers), body_, "127.0.0.1:5555"};
  }
  std::string Metrics() {
    return prometheus::TextSerializer().Serialize(registry_.Collect());
  }

  const std::string body_ = R"({"ref":"refs/heads/main"})";
  FakeStore store_;
  prometheus::Registry registry_;
  RepoWatcherMetrics metrics_{registry_};
  std::vector<std::string> triggered_;
  testing::FakeClock clock_;
  std::string dir_ = testing::MakeTempDir("webhook");
  secrets::SecretSources secrets_ = *secrets::SecretSources::Create({.secrets_dir = dir_});
  WebhookHandler handler_{&store_, &metrics_, &secrets_, [this](const std::string& id) { triggered_.push_back(id); }, &clock_,
                          absl::Minutes(1)};

  // The rejections the audit events account for (each event's "count").
  int64_t AuditedRejections() {
    int64_t n = 0;
    for (const v1::Event& e : store_.events) {
      auto it = e.details().fields().find("count");
      n += it == e.details().fields().end() ? 0 : static_cast<int64_t>(it->second.number_value());
    }
    return n;
  }
};

TEST_F(WebhookHandlerTest, AcceptsEachProvidersValidSignature) {
  std::string mac = HmacSha256Hex("hunter2", body_);
  EXPECT_EQ(handler_.Handle(Request("github", {{"x-hub-signature-256", "sha256=" + mac}})).status, 202);
  EXPECT_EQ(handler_.Handle(Request("gitea", {{"x-gitea-signature", mac}})).status, 202);
  EXPECT_EQ(handler_.Handle(Request("gitlab", {{"x-gitlab-token", "hunter2"}})).status, 202);
  EXPECT_EQ(handler_.Handle(Request("generic", {{"x-signature", "sha256=" + mac}})).status, 202);
  EXPECT_EQ(triggered_.size(), 4u);
  EXPECT_TRUE(store_.events.empty());
  EXPECT_NE(Metrics().find(R"(ferry_webhook_requests_total{provider="gitlab",result="accepted"} 1)"),
            std::string::npos)
      << Metrics();
}

TEST_F(WebhookHandlerTest, RejectsBadSignaturesWith401AndAudits) {
  std::string wrong = HmacSha256Hex("not-the-secret", body_);
  EXPECT_EQ(handler_.Handle(Request("github", {{"x-hub-signature-256", "sha256=" + wrong}})).status, 401);
  EXPECT_EQ(handler_.Handle(Request("github", {})).status, 401);
  EXPECT_EQ(handler_.Handle(Request("gitlab", {{"x-gitlab-token", "hunter3"}})).status, 401);
  EXPECT_EQ(handler_.Handle(Request("gitea", {{"x-gitea-signature", wrong}})).status, 401);
  EXPECT_TRUE(triggered_.empty());
  // The first is audited at once; the three after it within the minute are
  // counted and audited together once the minute has passed.
  ASSERT_EQ(store_.events.size(), 1u);
  EXPECT_EQ(store_.events[0].action(), v1::AUDIT_ACTION_WEBHOOK_REJECTED);
  EXPECT_EQ(store_.events[0].subject().repository_id(), "apps");
  handler_.FlushRejections();
  EXPECT_EQ(store_.events.size(), 1u) << "flushed before the minute passed";
  clock_.Advance(absl::Minutes(1));
  handler_.FlushRejections();
  ASSERT_EQ(store_.events.size(), 2u);
  EXPECT_EQ(store_.events[1].subject().repository_id(), "apps");
  EXPECT_EQ(store_.events[1].message(),
            "3 webhooks rejected with 401: missing or invalid signature since 2023-11-14T22:13:20Z");
  EXPECT_EQ(AuditedRejections(), 4);
  for (const v1::Event& e : store_.events) {
    EXPECT_EQ(e.DebugString().find("hunter2"), std::string::npos) << "secret leaked into audit";
  }
  EXPECT_NE(Metrics().find(R"(ferry_webhook_requests_total{provider="github",result="bad_signature"} 2)"),
            std::string::npos)
      << Metrics();
}

TEST_F(WebhookHandlerTest, UnknownRepositoryOrProviderIs404AndOversizeIs413) {
  WebhookRequest r = Request("github", {});
  r.repository_id = "nope";
  EXPECT_EQ(handler_.Handle(r).status, 404);
  r.repository_id = "quiet";  // no webhook secret configured
  EXPECT_EQ(handler_.Handle(r).status, 404);
  EXPECT_EQ(handler_.Handle(Request("bitbucket-of-doom", {})).status, 404);
  EXPECT_EQ(handler_.RejectTooLarge(Request("github", {}), 5 << 20, 1 << 20).status, 413);
  EXPECT_TRUE(triggered_.empty());
  EXPECT_EQ(store_.events.size(), 4u);
}

// 300 webhooks with bad signatures left 300 permanent audit events. Now the
// audit gets one event per (repository, reason) per minute with the count
// since the last, and metrics count every rejection.
TEST_F(WebhookHandlerTest, AFloodOfBadSignaturesLeavesABoundedNumberOfAuditEventsAndExactMetrics) {
  std::string wrong = HmacSha256Hex("not-the-secret", body_);
  // 300 over five minutes, one a second.
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(handler_.Handle(Request("github", {{"x-hub-signature-256", "sha256=" + wrong}})).status, 401);
    clock_.Advance(absl::Seconds(1));
    if (i % 10 == 0) handler_.FlushRejections();
  }
  clock_.Advance(absl::Minutes(1));
  handler_.FlushRejections();
  EXPECT_LE(store_.events.size(), 7u) << "one per minute, plus the first and the tail";
  EXPECT_GE(store_.events.size(), 5u);
  EXPECT_EQ(AuditedRejections(), 300) << "every rejection is in exactly one event";
  EXPECT_NE(Metrics().find(R"(ferry_webhook_requests_total{provider="github",result="bad_signature"} 300)"),
            std::string::npos)
      << Metrics();
  // Nothing left: a later flush adds nothing, and a rejection after a quiet
  // minute is audited at once.
  handler_.FlushRejections(/*all=*/true);
  size_t events = store_.events.size();
  clock_.Advance(absl::Minutes(2));
  handler_.FlushRejections();
  EXPECT_EQ(store_.events.size(), events);
  EXPECT_EQ(handler_.Handle(Request("github", {})).status, 401);
  EXPECT_EQ(store_.events.size(), events + 1);
  EXPECT_EQ(store_.events.back().message(), "webhook rejected with 401: missing or invalid signature");
}

// Unknown repositories share one key, so that made-up ids cannot make an
// audit event each.
TEST_F(WebhookHandlerTest, MadeUpRepositoryIdsShareOneAuditKey) {
  for (int i = 0; i < 100; ++i) {
    WebhookRequest r = Request("github", {});
    r.repository_id = "made-up-" + std::to_string(i);
    EXPECT_EQ(handler_.Handle(r).status, 404);
    r.provider = "nonsense";
    EXPECT_EQ(handler_.Handle(r).status, 404);
  }
  ASSERT_EQ(store_.events.size(), 2u);
  EXPECT_EQ(store_.events[0].subject().repository_id(), "");
  EXPECT_EQ(store_.events[0].details().fields().at("requested_repository_id").string_value(), "made-up-0");
  clock_.Advance(absl::Minutes(1));
  handler_.FlushRejections();
  EXPECT_EQ(store_.events.size(), 4u);
  EXPECT_EQ(AuditedRejections(), 200);
}

TEST(PollBackoffTest, GrowsExponentiallyToTheCapWithBoundedJitter) {
  SystemClock clock;
  RepoPoller poller(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, &clock, &NoSecretSources(),
                    PollOptions{.failure_backoff_initial = absl::Seconds(1), .failure_backoff_max = absl::Seconds(30),
                                .jitter_fraction = 0.1});
  for (int i = 0; i < 50; ++i) {
    absl::Duration d = poller.NextDelay(absl::Seconds(60), 0);
    EXPECT_GE(d, absl::Seconds(60));
    EXPECT_LE(d, absl::Seconds(66));
  }
  EXPECT_LE(poller.NextDelay(absl::Seconds(60), 1), absl::Seconds(1.1));
  EXPECT_GE(poller.NextDelay(absl::Seconds(60), 3), absl::Seconds(4));
  EXPECT_LE(poller.NextDelay(absl::Seconds(60), 3), absl::Seconds(4.4));
  EXPECT_GE(poller.NextDelay(absl::Seconds(60), 20), absl::Seconds(30));
  EXPECT_LE(poller.NextDelay(absl::Seconds(60), 20), absl::Seconds(33));
}

}  // namespace
}  // namespace ferry::repo_watcher
