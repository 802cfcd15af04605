// Application secrets through the four real service binaries (loopback, one
// real PostgreSQL, a real Git repository, the real ferry-secrets, age and
// age-keygen): an application takes a secret from each source the deployer
// has here (a value sealed to the deployer's key in Git, an age file in Git,
// the deployer's --secrets-dir, a variable with its --secret-env-prefix) into
// a Process's environment and a ConfigFile. Every output is then searched for
// each plaintext (and its base64 and hex): GetPlan, ListPlanManifests,
// PreviewPlan, GetDeployment, GetLiveState, the audit trail, every service's
// log, the deployer's files under the root and a dump of the database. The
// plaintext may appear only in the workload's own environment and file. A
// reference that cannot be resolved fails its deployment naming the object and
// field, with an audit event and nothing applied. (Vault references are
// covered by tests/deployer/secrets_test with an injected lookup: the
// deployer binary has no Vault client here.)

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/deployer/test_util.h"
#include "tests/support/plain_suite.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ServiceProcess;

// One plaintext per source, each unlike anything else in the system.
const std::map<std::string, std::string>& Plaintexts() {
  static const auto* p = new std::map<std::string, std::string>{
      {"sealed", "Pl41n-sealed-q7Zr"},   {"age", "Pl41n-age-w3Kx"},          {"dir", "Pl41n-dir-m9Tb"},
      {"env", "Pl41n-env-c5Hv"},         {"file", "Pl41n-configfile-u2Ly"},  {"resealed", "Pl41n-resealed-e8Np"},
  };
  return *p;
}

// The plaintext and the encodings it could hide in: base64 at each of the
// three alignments (the stable middle of each) and hex.
std::vector<std::string> Needles(const std::string& plain) {
  std::vector<std::string> out = {plain, absl::BytesToHexString(plain)};
  for (size_t skip = 0; skip < 3; ++skip) {
    std::string b64 = absl::Base64Escape(plain.substr(skip));
    out.push_back(b64.substr(0, (plain.size() - skip) / 3 * 4));
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& path, const std::string& data) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

class AppSecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-app-secrets");
    bare_ = dir_ + "/repo.git";
    work_ = dir_ + "/work";
    root_ = dir_ + "/env-local";
    keys_ = dir_ + "/keys";
    fs::create_directories(root_);
    fs::create_directories(keys_ + "/secrets-dir");
    chmod(keys_.c_str(), 0700);
    ASSERT_EQ(Run({"git", "init", "-q", "--bare", "-b", "main", bare_}), 0);
    ASSERT_EQ(Run({"git", "init", "-q", "-b", "main", work_}), 0);
  }
  void TearDown() override { deployer::testing::KillAllUnder(root_); }

  int Run(const std::vector<std::string>& argv, std::string* output = nullptr) {
    auto r = RunCommand(argv, absl::Seconds(60));
    if (output != nullptr) *output = r.output;
    if (r.exit_code != 0) ADD_FAILURE() << absl::StrJoin(argv, " ") << ": " << r.output;
    return r.exit_code;
  }
  int Git(std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-C", work_, "-c", "user.name=T", "-c", "user.email=t@example.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv);
  }
  void Commit(const std::string& message) {
    ASSERT_EQ(Git({"add", "-A"}), 0);
    ASSERT_EQ(Git({"commit", "-q", "-m", message}), 0);
    ASSERT_EQ(Git({"push", "-q", bare_, "main"}), 0);
  }
  std::string HeadSha() { return RunCommand({"git", "-C", work_, "rev-parse", "HEAD"}).output.substr(0, 40); }

  // Seals `plain` to the deployer's public key with the real ferry-secrets.
  std::string Seal(const std::string& plain) {
    WriteFile(keys_ + "/to-seal", plain);
    std::string out;
    EXPECT_EQ(Run({testing::BinaryPath("ferry-secrets"), "seal", keys_ + "/public-key", keys_ + "/to-seal"}, &out), 0);
    fs::remove(keys_ + "/to-seal");
    return out;
  }

  void MakeKeys() {
    std::string pub;
    ASSERT_EQ(Run({testing::BinaryPath("ferry-secrets"), "keygen", keys_ + "/deployer.key"}, &pub), 0);
    WriteFile(keys_ + "/public-key", pub);
    ASSERT_EQ(Run({"age-keygen", "-o", keys_ + "/age.key"}), 0);
    chmod((keys_ + "/age.key").c_str(), 0600);
    std::string recipient;
    ASSERT_EQ(Run({"age-keygen", "-y", keys_ + "/age.key"}, &recipient), 0);
    age_recipient_ = std::string(absl::StripAsciiWhitespace(recipient));
    WriteFile(keys_ + "/secrets-dir/app-db-password", Plaintexts().at("dir") + "\n");
  }

  void WriteRepo() {
    WriteFile(fs::path(work_) / "ferry.yaml",
              absl::StrCat("environments:\n  local:\n    host: {rootDir: ", root_, "}\n    approval: auto\n",
                           "applications:\n",
                           "  vault-app:\n    path: apps/vault-app\n    environments: [local]\n"
                           "    sync: {automated: true, prune: true}\n    healthTimeout: 20s\n",
                           "  bad-key:\n    path: apps/bad-key\n    environments: [local]\n"
                           "    sync: {automated: true, prune: true}\n    healthTimeout: 20s\n"));
    fs::path app = fs::path(work_) / "apps/vault-app";
    WriteFile(app / "db.sealed", Seal(Plaintexts().at("sealed")));
    WriteFile(app / "config.sealed", Seal(Plaintexts().at("file")));
    WriteFile(keys_ + "/age-plain", Plaintexts().at("age"));
    ASSERT_EQ(Run({"age", "-r", age_recipient_, "-o", (app / "api.age").string(), keys_ + "/age-plain"}), 0);
    fs::remove(keys_ + "/age-plain");
    WriteFile(app / "deploy.yaml",
              "apiVersion: ferry.dev/v1\nkind: Process\nmetadata: {name: web}\nspec:\n"
              "  command: \"printf '%s\\\\n' \\\"$DB\\\" \\\"$API\\\" \\\"$DIRSECRET\\\" \\\"$TOKEN\\\" > seen-env; "
              "exec sleep 300\"\n"
              "  env:\n"
              "  - {name: DB, valueFrom: {secretRef: {encryptedFile: db.sealed}}}\n"
              "  - {name: API, valueFrom: {secretRef: {encryptedFile: api.age}}}\n"
              "  - {name: DIRSECRET, valueFrom: {secretRef: {file: app-db-password}}}\n"
              "  - {name: TOKEN, valueFrom: {secretRef: {env: FERRY_SECRET_APP_TOKEN}}}\n"
              "  - {name: GREETING, value: hello}\n"
              "---\n"
              "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: creds}\nspec:\n"
              "  path: vault-app/creds.conf\n  mode: \"0640\"\n"
              "  contentFrom: {secretRef: {encryptedFile: config.sealed}}\n");
    // Sealed to a key that is not the deployer's.
    std::string other_pub;
    ASSERT_EQ(Run({testing::BinaryPath("ferry-secrets"), "keygen", keys_ + "/other.key"}, &other_pub), 0);
    WriteFile(keys_ + "/other-public-key", other_pub);
    WriteFile(keys_ + "/to-seal", "never-decryptable");
    std::string wrong;
    ASSERT_EQ(Run({testing::BinaryPath("ferry-secrets"), "seal", keys_ + "/other-public-key", keys_ + "/to-seal"}, &wrong), 0);
    WriteFile(fs::path(work_) / "apps/bad-key/wrong.sealed", wrong);
    WriteFile(fs::path(work_) / "apps/bad-key/deploy.yaml",
              "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: plain}\nspec: {path: bad-key/plain.txt, "
              "content: fine}\n---\n"
              "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: wrong}\nspec:\n  path: bad-key/wrong.txt\n"
              "  contentFrom: {secretRef: {encryptedFile: wrong.sealed}}\n");
  }

  void StartServices() {
    // The deployer's variable source (inherited by the services started below).
    setenv("FERRY_SECRET_APP_TOKEN", Plaintexts().at("env").c_str(), 1);
    testing::PlainSuiteFlags flags;
    flags.deployer = {"--secrets-key-file=" + keys_ + "/deployer.key", "--age-identity-file=" + keys_ + "/age.key",
                      "--secrets-dir=" + keys_ + "/secrets-dir", "--log-level=debug"};
    bool started = testing::StartPlainServices(db_.url(), dir_, flags, &services_);
    unsetenv("FERRY_SECRET_APP_TOKEN");
    ASSERT_TRUE(started);
    rw_ = v1::RepoWatcher::NewStub(testing::PlainChannel(*services_.repo_watcher));
    pl_ = v1::Planner::NewStub(testing::PlainChannel(*services_.planner));
    dp_ = v1::Deployer::NewStub(testing::PlainChannel(*services_.deployer));
    au_ = v1::Audit::NewStub(testing::PlainChannel(*services_.audit));
  }

  void RegisterAndDeclare() {
    {
      grpc::ClientContext ctx;
      v1::CreateRepositoryRequest req;
      req.mutable_repository()->set_id("secrets");
      req.mutable_repository()->set_url(bare_);
      req.mutable_repository()->add_branches("main");
      req.mutable_repository()->mutable_poll_interval()->set_seconds(1);
      v1::Repository out;
      grpc::Status s = rw_->CreateRepository(&ctx, req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    Refresh();
    grpc::ClientContext ctx;
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("secrets");
    req.mutable_source()->set_ref("refs/heads/main");
    v1::ApplyDeclarativeConfigResponse out;
    grpc::Status s = pl_->ApplyDeclarativeConfig(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message() << services_.planner->Log();
  }

  void Refresh() {
    grpc::ClientContext ctx;
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("secrets");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    grpc::Status s = rw_->RefreshRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::vector<v1::Plan> Plans(const std::string& app) {
    grpc::ClientContext ctx;
    v1::ListPlansRequest req;
    req.set_application_id(app);
    req.set_view(v1::PLAN_VIEW_BASIC);
    req.set_page_size(1000);
    v1::ListPlansResponse resp;
    if (!pl_->ListPlans(&ctx, req, &resp).ok()) return {};
    return {resp.plans().begin(), resp.plans().end()};
  }

  std::optional<v1::Plan> PlanFor(const std::string& app, const std::string& sha) {
    for (const v1::Plan& p : Plans(app))
      if (p.target_revision().sha() == sha) return p;
    return std::nullopt;
  }

  v1::Plan WaitFinished(const std::string& app, const std::string& sha) {
    absl::Time deadline = absl::Now() + absl::Minutes(2);
    while (absl::Now() < deadline) {
      if (auto p = PlanFor(app, sha)) {
        if (p->state() == v1::PLAN_STATE_FAILED || p->state() == v1::PLAN_STATE_SUCCEEDED ||
            p->state() == v1::PLAN_STATE_ROLLED_BACK || p->state() == v1::PLAN_STATE_REJECTED)
          return *p;
      }
      absl::SleepFor(absl::Milliseconds(300));
    }
    ADD_FAILURE() << app << " not finished at " << sha << "\nplanner:\n" << services_.planner->Log() << "\ndeployer:\n" << services_.deployer->Log();
    return {};
  }

  std::vector<v1::Deployment> Deployments(const std::string& app) {
    grpc::ClientContext ctx;
    v1::ListDeploymentsRequest req;
    req.set_application_id(app);
    v1::ListDeploymentsResponse resp;
    if (!dp_->ListDeployments(&ctx, req, &resp).ok()) return {};
    return {resp.deployments().begin(), resp.deployments().end()};
  }

  v1::LiveState LiveState(const std::string& app) {
    grpc::ClientContext ctx;
    v1::GetLiveStateRequest req;
    req.set_application_id(app);
    req.set_environment_id("local");
    req.set_refresh(true);
    req.set_include_json(true);
    v1::LiveState out;
    grpc::Status s = dp_->GetLiveState(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Every output a person or a peer can read, each as one text, by name.
  std::map<std::string, std::string> Outputs() {
    std::map<std::string, std::string> out;
    for (const std::string app : {"vault-app", "bad-key"}) {
      for (const v1::Plan& basic : Plans(app)) {
        grpc::ClientContext ctx;
        v1::GetPlanRequest req;
        req.set_plan_id(basic.id());
        req.set_view(v1::PLAN_VIEW_FULL);
        v1::Plan full;
        EXPECT_TRUE(pl_->GetPlan(&ctx, req, &full).ok());
        out["GetPlan " + basic.id()] = full.DebugString();
        grpc::ClientContext mctx;
        v1::ListPlanManifestsRequest mreq;
        mreq.set_plan_id(basic.id());
        v1::ListPlanManifestsResponse mresp;
        EXPECT_TRUE(pl_->ListPlanManifests(&mctx, mreq, &mresp).ok());
        out["ListPlanManifests " + basic.id()] = mresp.DebugString();
      }
      {
        grpc::ClientContext ctx;
        v1::PreviewPlanRequest req;
        req.set_application_id(app);
        req.set_environment_id("local");
        req.mutable_revision()->set_ref("main");
        v1::PreviewPlanResponse resp;
        grpc::Status s = pl_->PreviewPlan(&ctx, req, &resp);
        EXPECT_TRUE(s.ok()) << s.error_message();
        out["PreviewPlan " + app] = resp.DebugString();
      }
      for (const v1::Deployment& d : Deployments(app)) {
        grpc::ClientContext ctx;
        v1::GetDeploymentRequest req;
        req.set_deployment_id(d.id());
        v1::Deployment full;
        EXPECT_TRUE(dp_->GetDeployment(&ctx, req, &full).ok());
        out["GetDeployment " + d.id()] = full.DebugString();
      }
      // bad-key was never deployed: it has no live state to ask for.
      if (app == "vault-app") out["GetLiveState " + app] = LiveState(app).DebugString();
    }
    std::string events, token;
    do {
      grpc::ClientContext ctx;
      v1::QueryRequest req;
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::QueryResponse resp;
      grpc::Status s = au_->Query(&ctx, req, &resp);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (!s.ok()) break;
      events += resp.DebugString();
      token = resp.next_page_token();
    } while (!token.empty());
    out["audit Query"] = events;
    for (ServiceProcess* p : services_.All())
      out["log " + p->log_path()] = ReadFile(p->log_path());
    std::string dump;
    EXPECT_EQ(Run({"pg_dump", "--no-owner", db_.url()}, &dump), 0);
    EXPECT_TRUE(absl::StrContains(dump, "CREATE TABLE")) << dump.substr(0, 500);
    out["pg_dump"] = dump;
    // Everything under the root but the workload's own file and output.
    for (const auto& e : fs::recursive_directory_iterator(root_)) {
      if (!e.is_regular_file()) continue;
      std::string p = e.path().string();
      if (p == root_ + "/vault-app/creds.conf" || p == root_ + "/seen-env") continue;
      out["file " + p] = ReadFile(p);
    }
    return out;
  }

  testing::TestDatabase db_;
  std::string dir_, bare_, work_, root_, keys_, age_recipient_;
  testing::PlainServices services_;
  std::unique_ptr<v1::RepoWatcher::Stub> rw_;
  std::unique_ptr<v1::Planner::Stub> pl_;
  std::unique_ptr<v1::Deployer::Stub> dp_;
  std::unique_ptr<v1::Audit::Stub> au_;
};

TEST_F(AppSecretsTest, SecretsReachOnlyTheWorkloadAndEveryOutputShowsDigests) {
  MakeKeys();
  WriteRepo();
  Commit("an application with a secret from each source");
  std::string sha = HeadSha();
  StartServices();
  RegisterAndDeclare();

  v1::Plan good = WaitFinished("vault-app", sha);
  EXPECT_EQ(good.state(), v1::PLAN_STATE_SUCCEEDED) << good.DebugString() << services_.deployer->Log();
  // The workload has every value.
  std::string seen;
  for (int i = 0; i < 100 && (seen = ReadFile(root_ + "/seen-env")).empty(); ++i) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(seen, absl::StrCat(Plaintexts().at("sealed"), "\n", Plaintexts().at("age"), "\n", Plaintexts().at("dir"), "\n",
                               Plaintexts().at("env"), "\n"));
  EXPECT_EQ(ReadFile(root_ + "/vault-app/creds.conf"), Plaintexts().at("file"));
  struct stat st;
  ASSERT_EQ(stat((root_ + "/vault-app/creds.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);

  // The bad reference failed its deployment, named the object and field,
  // applied nothing (not even the good file beside it), and was audited.
  v1::Plan bad = WaitFinished("bad-key", sha);
  EXPECT_EQ(bad.state(), v1::PLAN_STATE_FAILED) << bad.DebugString();
  std::vector<v1::Deployment> bad_deployments = Deployments("bad-key");
  ASSERT_EQ(bad_deployments.size(), 1u);
  EXPECT_EQ(bad_deployments[0].state(), v1::DEPLOYMENT_STATE_FAILED);
  EXPECT_TRUE(absl::StrContains(bad_deployments[0].message(),
                                "ConfigFile \"wrong\": spec.contentFrom.secretRef.encryptedFile \"wrong.sealed\""))
      << bad_deployments[0].message();
  EXPECT_TRUE(absl::StrContains(bad_deployments[0].message(), "not sealed to this deployer's key"))
      << bad_deployments[0].message();
  EXPECT_FALSE(fs::exists(root_ + "/bad-key/plain.txt"));
  EXPECT_FALSE(fs::exists(root_ + "/bad-key/wrong.txt"));

  // The plan shows which secrets it deploys, by reference and digest.
  {
    grpc::ClientContext ctx;
    v1::GetPlanRequest req;
    req.set_plan_id(good.id());
    v1::Plan full;
    ASSERT_TRUE(pl_->GetPlan(&ctx, req, &full).ok());
    EXPECT_TRUE(absl::StrContains(full.DebugString(), "encryptedFile")) << full.DebugString();
  }

  // Drift on the secret file is seen, by digest.
  WriteFile(root_ + "/vault-app/creds.conf", "edited by hand");
  bool drift_seen = false;
  v1::LiveState live = LiveState("vault-app");
  for (const v1::LiveObject& o : live.objects()) {
    if (o.object().name() != "creds") continue;
    drift_seen = o.drift() == v1::DRIFT_STATUS_MODIFIED;
    EXPECT_TRUE(absl::StrContains(o.drift_message(), "secret changed")) << o.drift_message();
    EXPECT_FALSE(absl::StrContains(o.live_json(), "edited by hand")) << o.live_json();
    EXPECT_TRUE(absl::StrContains(o.live_json(), "hmac-sha256:")) << o.live_json();
  }
  EXPECT_TRUE(drift_seen);
  WriteFile(root_ + "/vault-app/creds.conf", Plaintexts().at("file"));
  chmod((root_ + "/vault-app/creds.conf").c_str(), 0640);

  // A re-sealed secret in Git: the plan shows a changed digest, the workload
  // gets the new value.
  WriteFile(fs::path(work_) / "apps/vault-app/config.sealed", Seal(Plaintexts().at("resealed")));
  Commit("rotate the config secret");
  std::string sha2 = HeadSha();
  Refresh();
  v1::Plan rotated = WaitFinished("vault-app", sha2);
  EXPECT_EQ(rotated.state(), v1::PLAN_STATE_SUCCEEDED) << rotated.DebugString() << services_.deployer->Log();
  {
    grpc::ClientContext ctx;
    v1::GetPlanRequest req;
    req.set_plan_id(rotated.id());
    v1::Plan full;
    ASSERT_TRUE(pl_->GetPlan(&ctx, req, &full).ok());
    std::string diffs;
    for (const v1::PlanAction& a : full.actions()) diffs += a.unified_diff();
    EXPECT_TRUE(absl::StrContains(diffs, "sourceDigest")) << diffs;
  }
  EXPECT_EQ(ReadFile(root_ + "/vault-app/creds.conf"), Plaintexts().at("resealed"));

  // Every output: no plaintext, in any encoding.
  std::map<std::string, std::string> outputs = Outputs();
  EXPECT_GT(outputs.size(), 12u);
  int files_under_root = 0;
  for (const auto& [name, text] : outputs) {
    if (absl::StartsWith(name, "file ")) ++files_under_root;
    for (const auto& [source, plain] : Plaintexts()) {
      for (const std::string& needle : Needles(plain)) {
        size_t at = text.find(needle);
        EXPECT_EQ(at, std::string::npos) << "the " << source << " plaintext (as \"" << needle << "\") is in " << name
                                         << ": ..." << text.substr(at == std::string::npos ? 0 : (at > 200 ? at - 200 : 0), 400);
      }
    }
  }
  EXPECT_GT(files_under_root, 0) << "no deployer state file was searched";
  // The search looks where the references and digests are (so it would see
  // a value there), and it finds a value where one is.
  auto has = [&outputs](const std::string& prefix, const std::string& what) {
    for (const auto& [name, text] : outputs)
      if (absl::StartsWith(name, prefix) && absl::StrContains(text, what)) return true;
    return false;
  };
  EXPECT_TRUE(has("GetDeployment ", "DEPLOYMENT_STATE_SUCCEEDED"));
  EXPECT_TRUE(has("GetLiveState ", "hmac-sha256:"));
  EXPECT_TRUE(has("GetPlan ", "api.age"));
  EXPECT_TRUE(has("pg_dump", "valueDigest"));
  EXPECT_TRUE(has("file " + root_ + "/.ferry/run/", "valueDigest"));
  EXPECT_TRUE(has("log ", "deployment"));
  EXPECT_NE(ReadFile(root_ + "/vault-app/creds.conf").find(Needles(Plaintexts().at("resealed"))[0]), std::string::npos);
  std::cout << "[ SEARCHED ] " << outputs.size() << " outputs, " << files_under_root << " files under the root\n";
  // The audit trail tells the bad reference's story.
  bool audited = false;
  for (const auto& [name, text] : outputs) {
    if (name == "audit Query") audited = absl::StrContains(text, "wrong.sealed") && absl::StrContains(text, "DEPLOYMENT_FAILED");
  }
  EXPECT_TRUE(audited) << outputs["audit Query"].substr(0, 3000);
}

}  // namespace
}  // namespace ferry
