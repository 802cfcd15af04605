#include "tests/integration/secure_suite.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/test_certs.h"

namespace ferry::testing {

const char kBasePolicy[] = R"(bindings:
  - subjects: ["user:viewer"]
    role: viewer
  - subjects: ["user:operator"]
    role: operator
  - subjects: ["user:approver"]
    role: approver
    environments: ["prod"]
  - subjects: ["user:admin"]
    role: admin
  - subjects: ["user:ci"]
    role: ci
  - subjects: ["user:prod-admin"]
    role: admin
    environments: ["prod"]
  - subjects: ["user:glob-admin"]
    role: admin
    environments: ["?*"]
    applications: ["?*"]
)";

namespace {

void WriteFile(const std::string& path, const std::string& data, mode_t mode = 0600) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
  }
  ::chmod(tmp.c_str(), mode);
  std::filesystem::rename(tmp, path);
}

std::string RandomChars(const std::string& alphabet, int n) {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < n; ++i) out += alphabet[rd() % alphabet.size()];
  return out;
}

std::string ConfigFile(const std::string& text) {
  return absl::StrCat("apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: greeting\nspec:\n",
                      "  path: web/greeting.txt\n  content: \"", text, "\\n\"\n");
}

}  // namespace

std::string Describe(const grpc::Status& s) {
  return absl::StrCat(static_cast<int>(s.error_code()), ": ", s.error_message());
}

SecureSuite::SecureSuite() {
  dir_ = MakeTempDir("ferry-access");
  policy_path_ = dir_ + "/access-policy.yaml";
  token_key_path_ = dir_ + "/token.key";
  admin_token_path_ = dir_ + "/admin.token";
  const std::string hex = "0123456789abcdef";
  WriteFile(token_key_path_, RandomChars(hex, 64) + "\n");
  admin_token_ = absl::StrCat(
      "ferry_", RandomChars(hex, 12), "_",
      RandomChars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 42),
      // 32 bytes in 43 characters: the last one carries 4 bits and two zeros.
      RandomChars("AEIMQUYcgkosw048", 1));
  WriteFile(admin_token_path_, admin_token_ + "\n");
}

SecureSuite::~SecureSuite() {
  for (auto* p : {&notifier_, &deployer_, &planner_, &watcher_, &audit_}) {
    if (*p) (void)(*p)->Stop();
  }
}

void SecureSuite::WritePolicy(const std::string& policy) {
  WriteFile(policy_path_, policy, 0644);
  policy_written_ = true;
}

bool SecureSuite::Start() {
  if (!policy_written_) WritePolicy(kBasePolicy);
  // Ports are chosen before the services start (each needs the others'
  // addresses), so another test may take one meanwhile: then start again on
  // other ports.
  for (int attempt = 1;; ++attempt) {
    std::map<std::string, int> port;
    for (const char* s : {"audit", "repo-watcher", "planner", "deployer", "notifier"}) port[s] = FreePort();
    auto addr = [port](const std::string& s) { return absl::StrCat("127.0.0.1:", port.at(s)); };
    auto start = [this, addr](const std::string& svc,
                              std::vector<std::string> extra) -> absl::StatusOr<std::unique_ptr<ServiceProcess>> {
      std::vector<std::string> args = TestCerts::Get().Flags(svc);
      for (std::string a : {"--database-url=" + db_.url(), "--audit-address=" + addr("audit"),
                            "--grpc-address=" + addr(svc), "--access-policy-file=" + policy_path_,
                            "--token-key-file=" + token_key_path_}) {
        args.push_back(a);
      }
      args.insert(args.end(), extra.begin(), extra.end());
      return ServiceProcess::Start("ferry-" + svc, args, absl::Seconds(60));
    };
    const std::vector<std::string> planner_args = {"--repo-watcher-address=" + addr("repo-watcher"),
                                                   "--deployer-address=" + addr("deployer"),
                                                   "--bootstrap-admin-token-file=" + admin_token_path_};
    start_planner_ = [start, planner_args]() -> std::unique_ptr<ServiceProcess> {
      auto p = start("planner", planner_args);
      EXPECT_TRUE(p.ok()) << "planner: " << p.status();
      return p.ok() ? std::move(*p) : nullptr;
    };
    struct Step {
      std::string service;
      std::unique_ptr<ServiceProcess>* slot;
      std::vector<std::string> extra;
    };
    const std::vector<Step> steps = {
        {"audit", &audit_, {"--checkpoint-key-file=" + dir_ + "/checkpoint.pem"}},
        {"repo-watcher", &watcher_, {"--cache-dir=" + dir_ + "/cache", "--webhook-address=127.0.0.1:0"}},
        {"planner", &planner_, planner_args},
        {"deployer", &deployer_, {"--planner-address=" + addr("planner"), "--repo-watcher-address=" + addr("repo-watcher")}},
        {"notifier", &notifier_, {"--repo-watcher-address=" + addr("repo-watcher"), "--planner-address=" + addr("planner")}},
    };
    absl::Status failed;
    std::string failed_service;
    for (const Step& step : steps) {
      auto p = start(step.service, step.extra);
      if (!p.ok()) {
        failed = p.status();
        failed_service = step.service;
        break;
      }
      *step.slot = std::move(*p);
    }
    if (failed.ok()) return true;
    for (auto* p : {&notifier_, &deployer_, &planner_, &watcher_, &audit_}) {
      if (*p) (void)(*p)->Stop();
      p->reset();
    }
    if (attempt < 3 && absl::StrContains(failed.message(), "Address already in use")) continue;
    ADD_FAILURE() << failed_service << ": " << failed;
    return false;
  }
}

bool SecureSuite::RestartPlanner() {
  absl::StatusOr<int> stopped = planner_->Stop();
  EXPECT_TRUE(stopped.ok()) << stopped.status();
  planner_ = start_planner_();
  return planner_ != nullptr;
}

ServiceProcess& SecureSuite::process(const std::string& service) {
  if (service == "audit") return *audit_;
  if (service == "repo-watcher") return *watcher_;
  if (service == "deployer") return *deployer_;
  if (service == "notifier") return *notifier_;
  return *planner_;  // planner and its Access service
}

std::shared_ptr<grpc::Channel> SecureSuite::UserChannel(const std::string& service) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(process(service).grpc_target(), TestCerts::Get().UserCredentials(), args);
}

std::shared_ptr<grpc::Channel> SecureSuite::ServiceChannel(const std::string& service, const std::string& cert_of) {
  grpc::ChannelArguments args;
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  return grpc::CreateCustomChannel(process(service).grpc_target(), TestCerts::Get().ServiceCredentials(cert_of), args);
}

std::unique_ptr<grpc::ClientContext> SecureSuite::Context(const std::string& token, absl::Duration deadline) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return ctx;
}

std::string SecureSuite::CreateToken(const std::string& subject, const std::vector<std::string>& groups,
                                     int64_t ttl_seconds, v1::Token* token) {
  v1::CreateTokenRequest req;
  req.set_subject(subject);
  for (const std::string& g : groups) req.add_groups(g);
  if (ttl_seconds > 0) req.mutable_ttl()->set_seconds(ttl_seconds);
  v1::CreateTokenResponse out;
  grpc::Status s = Access()->CreateToken(Context(admin_token_).get(), req, &out);
  EXPECT_TRUE(s.ok()) << "CreateToken " << subject << ": " << Describe(s);
  if (token != nullptr) *token = out.token();
  return out.secret();
}

bool SecureSuite::Seed() {
  repo_ = std::make_unique<GitTestRepo>(dir_ + "/git");
  const std::string yaml = absl::StrCat(
      "environments:\n",
      "  staging:\n    host: {rootDir: ", dir_, "/env-staging}\n    approval: manual\n",
      "  prod:\n    host: {rootDir: ", dir_, "/env-prod}\n    approval: manual\n",
      "applications:\n  web:\n    path: apps/web\n    environments: [staging, prod]\n",
      "    sync: {automated: false}\n    healthTimeout: 10s\n");
  head_ = repo_->Commit({{"ferry.yaml", yaml}, {"apps/web/deploy.yaml", ConfigFile("hello")}}, "first");
  repo_->Push("main");
  {
    v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("config");
    req.mutable_repository()->set_url(repo_->remote_path());
    req.mutable_repository()->mutable_poll_interval()->set_seconds(1);
    v1::Repository out;
    grpc::Status s = RepoWatcher()->CreateRepository(Context(admin_token_).get(), req, &out);
    EXPECT_TRUE(s.ok()) << "CreateRepository: " << Describe(s);
    if (!s.ok()) return false;
  }
  {
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("config");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    grpc::Status s = RepoWatcher()->RefreshRepository(Context(admin_token_, absl::Seconds(60)).get(), req, &out);
    EXPECT_TRUE(s.ok()) << "RefreshRepository: " << Describe(s);
    if (!s.ok()) return false;
  }
  {
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("config");
    req.mutable_source()->set_ref("main");
    v1::ApplyDeclarativeConfigResponse out;
    grpc::Status s;
    // The planner may not have seen the revision yet.
    bool ok = Eventually([&] {
      s = Planner()->ApplyDeclarativeConfig(Context(admin_token_, absl::Seconds(60)).get(), req, &out);
      return s.ok();
    });
    EXPECT_TRUE(ok) << "ApplyDeclarativeConfig: " << Describe(s) << Logs();
    if (!ok) return false;
  }
  for (const char* env : {"staging", "prod"}) {
    v1::PlanRevisionRequest req;
    req.set_application_id("web");
    req.set_environment_id(env);
    req.mutable_revision()->set_sha(head_);
    req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
    v1::PlanRevisionResponse out;
    grpc::Status s = Planner()->PlanRevision(Context(admin_token_, absl::Seconds(60)).get(), req, &out);
    EXPECT_TRUE(s.ok()) << "PlanRevision " << env << ": " << Describe(s) << Logs();
    if (!s.ok() || !out.has_plan()) return false;
    EXPECT_EQ(out.plan().state(), v1::PLAN_STATE_PENDING) << out.plan().ShortDebugString();
    (std::string(env) == "prod" ? prod_plan_ : staging_plan_) = out.plan().id();
  }
  return true;
}

std::string SecureSuite::CommitGreeting(const std::string& text) {
  return CommitFiles({{"apps/web/deploy.yaml", ConfigFile(text)}}, text);
}

std::string SecureSuite::CommitFiles(const std::map<std::string, std::string>& files, const std::string& message) {
  std::string sha = repo_->Commit(files, message);
  repo_->Push("main");
  v1::RefreshRepositoryRequest req;
  req.set_repository_id("config");
  req.set_wait(true);
  v1::RefreshRepositoryResponse out;
  grpc::Status s = RepoWatcher()->RefreshRepository(Context(admin_token_, absl::Seconds(60)).get(), req, &out);
  EXPECT_TRUE(s.ok()) << "RefreshRepository: " << Describe(s);
  return sha;
}

bool SecureSuite::WaitForPlan(const std::string& id, v1::PlanState state, absl::Duration timeout) {
  return Eventually([&] { return GetPlan(id).state() == state; }, timeout);
}

v1::Plan SecureSuite::GetPlan(const std::string& id) {
  v1::GetPlanRequest req;
  req.set_plan_id(id);
  req.set_view(v1::PLAN_VIEW_BASIC);
  v1::Plan out;
  grpc::Status s = Planner()->GetPlan(Context(admin_token_).get(), req, &out);
  EXPECT_TRUE(s.ok()) << Describe(s);
  return out;
}

std::vector<v1::Event> SecureSuite::Events(v1::AuditAction action) {
  v1::QueryRequest req;
  req.mutable_filter()->add_actions(action);
  req.set_page_size(1000);
  v1::QueryResponse out;
  grpc::Status s = Audit()->Query(Context(admin_token_).get(), req, &out);
  EXPECT_TRUE(s.ok()) << Describe(s);
  return {out.events().begin(), out.events().end()};
}

bool SecureSuite::Eventually(const std::function<bool()>& done, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (done()) return true;
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

std::string SecureSuite::Logs() {
  std::string out;
  for (const char* s : {"audit", "repo-watcher", "planner", "deployer", "notifier"}) {
    ServiceProcess* p = s == std::string("audit")          ? audit_.get()
                        : s == std::string("repo-watcher") ? watcher_.get()
                        : s == std::string("planner")      ? planner_.get()
                        : s == std::string("notifier")     ? notifier_.get()
                                                           : deployer_.get();
    if (p == nullptr) continue;
    std::string log = p->Log();
    if (log.size() > 4000) log = log.substr(log.size() - 4000);
    absl::StrAppend(&out, "\n--- ", s, " ---\n", log);
  }
  return out;
}

}  // namespace ferry::testing
