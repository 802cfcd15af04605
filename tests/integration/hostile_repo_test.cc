// A repository of hostile and careless content, run through the four real
// service binaries (loopback, one real PostgreSQL, a real Git repository):
// every bad application fails alone, with a clear message naming what was
// wrong and an audit event; the good applications beside them deploy; every
// service stays SERVING and within a stated memory bound; and a later commit
// that fixes one bad application deploys it (nothing is wedged).

#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "ferry/v1/audit.grpc.pb.h"
#include "ferry/v1/deployer.grpc.pb.h"
#include "ferry/v1/planner.grpc.pb.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "tests/support/plain_suite.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry {
namespace {

namespace fs = std::filesystem;
using testing::RunCommand;
using testing::ServiceProcess;

// Every service's peak resident memory must stay under this while it reads
// the hostile repository (the planner's budgets are what keep it there).
constexpr int64_t kRssBoundKiB = 400 * 1024;

// Peak resident set (VmHWM) of a live process, in KiB; -1 if unknown.
int64_t PeakRssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

void WriteFile(const fs::path& path, const std::string& data) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string ConfigFile(const std::string& name, const std::string& path, const std::string& content_yaml) {
  return absl::StrCat("apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata:\n  name: ", name, "\nspec:\n  path: ",
                      path, "\n", content_yaml, "\n");
}

std::string BillionLaughs() {
  std::string y = "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i <= 9; ++i) {
    std::string refs;
    for (int j = 0; j < 9; ++j) absl::StrAppend(&refs, j ? "," : "", "*a", i - 1);
    absl::StrAppend(&y, "a", i, ": &a", i, " [", refs, "]\n");
  }
  return absl::StrCat("apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: laughs}\nspec:\n  path: laughs.txt\n",
                      "  content: hi\n  extra:\n", "    ", absl::StrJoin(absl::StrSplit(y, '\n', absl::SkipEmpty()), "\n    "),
                      "\n");
}

// One hostile application: its files, and what its failure must say.
struct BadApp {
  std::string name;
  std::string render = "plain";
  std::map<std::string, std::string> files;  // relative to apps/<name>/
  std::string expect;                        // ECMAScript regex, case-insensitive, over plan + deployment messages
};

std::vector<BadApp> HostileApps() {
  std::vector<BadApp> apps;
  apps.push_back({"bad-utf8", "plain",
                  {{"deploy.yaml", ConfigFile("u", "u.txt", "  content: \"caf\xC3\x28 \xFF\xFE\"")}},
                  "UTF-8"});
  apps.push_back({"laughs", "plain", {{"deploy.yaml", BillionLaughs()}}, "--max-yaml-nodes"});
  apps.push_back({"deep-flow", "plain", {{"deploy.yaml", std::string(100000, '[') + std::string(100000, ']') + "\n"}},
                  "--max-yaml-depth"});
  {
    std::string deep = "{\"apiVersion\":\"ferry.dev/v1\",\"kind\":\"ConfigFile\",\"metadata\":{\"name\":\"j\"},\"spec\":";
    for (int i = 0; i < 50000; ++i) deep += "{\"a\":";
    deep += "1";
    deep += std::string(50000, '}');
    deep += "}\n";
    apps.push_back({"deep-json", "plain", {{"deploy.json", deep}}, "--max-yaml-depth"});
  }
  {
    std::string docs;
    for (int i = 0; i < 1500; ++i)
      absl::StrAppend(&docs, "---\n", ConfigFile(absl::StrCat("d", i), absl::StrCat("d/", i), "  content: x"));
    apps.push_back({"many-docs", "plain", {{"deploy.yaml", docs}}, "--max-yaml-documents"});
  }
  {
    // 10,001 objects in eleven files (each within the documents limit).
    std::map<std::string, std::string> files;
    for (int i = 0; i < 10001; ++i)
      absl::StrAppend(&files[absl::StrCat("part-", i % 11, ".yaml")], "---\n",
                      ConfigFile(absl::StrCat("f", i), absl::StrCat("f/", i), "  content: x"));
    apps.push_back({"many-objects", "plain", files, "--max-objects-per-app"});
  }
  apps.push_back({"long-scalar", "plain",
                  {{"deploy.yaml", ConfigFile("l", "l.txt", "  content: " + std::string(6 << 20, 'x'))}},
                  "--max-yaml-scalar-bytes"});
  apps.push_back({"huge-file", "plain",
                  {{"deploy.yaml", ConfigFile("h", "h.txt", "  content: " + std::string(40 << 20, 'x'))}},
                  "--read-content-max-file-bytes"});
  apps.push_back({"escape", "plain",
                  {{"deploy.yaml", ConfigFile("e", "e.txt", "  contentFrom: {file: ../../../../../etc/passwd}")}},
                  "outside|escape|\\.\\."});
  apps.push_back({"symlink", "plain",
                  {{"deploy.yaml", ConfigFile("s", "s.txt", "  contentFrom: {file: link}")}, {"@link", "/etc/passwd"}},
                  "symlink|outside|not a (regular )?file"});
  apps.push_back({"abs-path", "plain", {{"deploy.yaml", ConfigFile("a", "/etc/ferry-hostile", "  content: x")}},
                  "absolute|outside|relative"});
  apps.push_back({"unknown-kind", "plain",
                  {{"deploy.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n"}},
                  "kind"});
  apps.push_back({"duplicate", "plain",
                  {{"deploy.yaml", ConfigFile("d", "d1.txt", "  content: a") + "---\n" +
                                       ConfigFile("d", "d2.txt", "  content: b")}},
                  "duplicate|twice|more than once"});
  apps.push_back({"not-yaml", "plain", {{"deploy.yaml", std::string("\x7f" "ELF\x02\x01\x01\0\0\0\0\xff\xfe:\n\t- [", 18)}},
                  "UTF-8|NUL|yaml|parse|syntax"});
  apps.push_back({"bad-filename", "plain",
                  {{"deploy.yaml", ConfigFile("b", "b.txt", "  content: x")}, {"caf\xE9-\xFF.yaml", "{}\n"}},
                  "UTF-8"});
  apps.push_back({"huge-name", "plain",
                  {{"deploy.yaml", ConfigFile(std::string(100000, 'n'), "n.txt", "  content: x")}},
                  "name"});
  apps.push_back({"kustomize-escape", "kustomize",
                  {{"kustomization.yaml", "resources:\n- ../../secrets\n- /etc/passwd\n"}},
                  "kustomize|kustomization|outside|not (found|exist)|security|restrict"});
  apps.push_back({"helm-recursion", "helm",
                  {{"Chart.yaml", "apiVersion: v2\nname: r\nversion: 0.1.0\n"},
                   {"templates/_r.tpl", "{{- define \"r\" -}}{{ include \"r\" . }}{{- end -}}\n"},
                   {"templates/cm.yaml", "{{ include \"r\" . }}\n"}},
                  "recursion|helm|render"});
  apps.push_back({"helm-bomb", "helm",
                  {{"Chart.yaml", "apiVersion: v2\nname: b\nversion: 0.1.0\n"},
                   {"templates/cm.yaml",
                    "{{- range $i := until 200000000 }}\n"
                    "apiVersion: ferry.dev/v1\nkind: ConfigFile\nmetadata: {name: \"b{{ $i }}\"}\n"
                    "spec: {path: \"b/{{ $i }}\", content: x}\n---\n{{- end }}\n"}},
                  "--render-memory-limit-mb|--render-cpu-seconds|output"});
  return apps;
}

class HostileRepoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ferry-hostile");
    bare_ = dir_ + "/repo.git";
    work_ = dir_ + "/work";
    root_ = dir_ + "/env-local";
    fs::create_directories(root_);
    ASSERT_EQ(Git({"init", "-q", "--bare", "-b", "main", bare_}), 0);
    ASSERT_EQ(Git({"init", "-q", "-b", "main", work_}), 0);
  }

  int Git(std::vector<std::string> args) {
    std::vector<std::string> argv = {"git", "-c", "user.name=Hostile", "-c", "user.email=hostile@example.invalid"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunCommand(argv, absl::Seconds(120));
    if (r.exit_code != 0) ADD_FAILURE() << absl::StrJoin(argv, " ") << ": " << r.output;
    return r.exit_code;
  }

  std::string GitOut(std::vector<std::string> args) {
    args.insert(args.begin(), "git");
    auto r = RunCommand(args, absl::Seconds(60));
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return std::string(absl::StripAsciiWhitespace(r.output));
  }

  void WriteApp(const std::string& name, const std::map<std::string, std::string>& files) {
    fs::path app = fs::path(work_) / "apps" / name;
    fs::remove_all(app);
    for (const auto& [rel, data] : files) {
      if (rel[0] == '@') {
        fs::create_directories(app);
        fs::create_symlink(data, app / rel.substr(1));
      } else {
        WriteFile(app / rel, data);
      }
    }
  }

  void Commit(const std::string& message, bool push = true) {
    ASSERT_EQ(Git({"-C", work_, "add", "-A"}), 0);
    ASSERT_EQ(Git({"-C", work_, "commit", "-q", "-m", message}), 0);
    if (push) {
      ASSERT_EQ(Git({"-C", work_, "push", "-q", bare_, "main"}), 0);
    }
  }

  void StartServices() {
    std::string tools = std::string(FERRY_SOURCE_DIR) + "/.tools/bin";
    testing::PlainSuiteFlags flags;
    flags.planner = {"--helm-path=" + tools + "/helm", "--kubectl-path=" + tools + "/kubectl"};
    ASSERT_TRUE(testing::StartPlainServices(db_.url(), dir_, flags, &services_));
    rw_ = v1::RepoWatcher::NewStub(testing::PlainChannel(*services_.repo_watcher));
    pl_ = v1::Planner::NewStub(testing::PlainChannel(*services_.planner));
    dp_ = v1::Deployer::NewStub(testing::PlainChannel(*services_.deployer));
    au_ = v1::Audit::NewStub(testing::PlainChannel(*services_.audit));
  }

  std::vector<ServiceProcess*> Services() { return services_.All(); }

  // The newest plan of `app` in `local`, if any.
  std::optional<v1::Plan> LatestPlan(const std::string& app) {
    grpc::ClientContext ctx;
    v1::ListPlansRequest req;
    req.set_application_id(app);
    req.set_environment_id("local");
    req.set_view(v1::PLAN_VIEW_BASIC);
    req.set_page_size(1000);
    v1::ListPlansResponse resp;
    grpc::Status s = pl_->ListPlans(&ctx, req, &resp);
    if (!s.ok() || resp.plans().empty()) return std::nullopt;
    v1::Plan newest = resp.plans(0);
    for (const v1::Plan& p : resp.plans()) {
      if (p.create_time().seconds() > newest.create_time().seconds() ||
          (p.create_time().seconds() == newest.create_time().seconds() &&
           p.create_time().nanos() > newest.create_time().nanos()))
        newest = p;
    }
    return newest;
  }

  std::vector<v1::Deployment> Deployments(const std::string& app) {
    grpc::ClientContext ctx;
    v1::ListDeploymentsRequest req;
    req.set_application_id(app);
    v1::ListDeploymentsResponse resp;
    if (!dp_->ListDeployments(&ctx, req, &resp).ok()) return {};
    return {resp.deployments().begin(), resp.deployments().end()};
  }

  std::vector<v1::Event> Events(const std::string& app) {
    std::vector<v1::Event> out;
    std::string token;
    do {
      grpc::ClientContext ctx;
      v1::QueryRequest req;
      req.mutable_filter()->set_application_id(app);
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::QueryResponse resp;
      if (!au_->Query(&ctx, req, &resp).ok()) break;
      out.insert(out.end(), resp.events().begin(), resp.events().end());
      token = resp.next_page_token();
    } while (!token.empty());
    return out;
  }

  static bool Finished(const v1::Plan& p) {
    return p.state() == v1::PLAN_STATE_FAILED || p.state() == v1::PLAN_STATE_ROLLED_BACK ||
           p.state() == v1::PLAN_STATE_SUCCEEDED || p.state() == v1::PLAN_STATE_REJECTED;
  }

  // Everything said about the application's newest plan and its deployments.
  std::string Story(const std::string& app) {
    std::string out;
    if (auto p = LatestPlan(app)) {
      absl::StrAppend(&out, "plan ", v1::PlanState_Name(p->state()), ": ", p->failure().message(), " [path ",
                      p->failure().path(), "]");
    }
    for (const v1::Deployment& d : Deployments(app))
      absl::StrAppend(&out, " | deployment ", v1::DeploymentState_Name(d.state()), ": ", d.message());
    return out;
  }

  // Waits until every listed application's newest plan (for the commit
  // `sha`) has finished, or `timeout` passes.
  void WaitFinished(const std::vector<std::string>& apps, const std::string& sha, absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    std::vector<std::string> waiting;
    while (absl::Now() < deadline) {
      waiting.clear();
      for (const std::string& a : apps) {
        auto p = LatestPlan(a);
        if (!p || p->target_revision().sha() != sha || !Finished(*p)) waiting.push_back(a);
      }
      if (waiting.empty()) return;
      absl::SleepFor(absl::Milliseconds(500));
    }
    std::string detail;
    for (const std::string& a : waiting) absl::StrAppend(&detail, "\n  ", a, ": ", Story(a));
    ADD_FAILURE() << "not finished within " << absl::FormatDuration(timeout) << ":" << detail << "\nplanner log:\n"
                  << services_.planner->Log() << "\ndeployer log:\n"
                  << services_.deployer->Log();
  }

  // The planner's and deployer's log lines that mention `what`.
  std::string LogLinesAbout(const std::string& what) {
    std::string out;
    for (ServiceProcess* p : {services_.planner.get(), services_.deployer.get()}) {
      for (absl::string_view line : absl::StrSplit(p->Log(), '\n')) {
        if (absl::StrContains(line, absl::StrCat("\"", what, "\"")) || absl::StrContains(line, "/" + what + "/"))
          absl::StrAppend(&out, p->log_path(), ": ", line.substr(0, 600), "\n");
      }
    }
    return out;
  }

  std::string HeadSha() {
    auto r = RunCommand({"git", "-C", work_, "rev-parse", "HEAD"});
    return r.output.substr(0, 40);
  }

  void Register() {
    grpc::ClientContext ctx;
    v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("hostile");
    req.mutable_repository()->set_url(bare_);
    req.mutable_repository()->add_branches("main");
    req.mutable_repository()->mutable_poll_interval()->set_seconds(1);
    v1::Repository out;
    grpc::Status s = rw_->CreateRepository(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  void RefreshAndDeclare() {
    {
      grpc::ClientContext ctx;
      v1::RefreshRepositoryRequest req;
      req.set_repository_id("hostile");
      req.set_wait(true);
      v1::RefreshRepositoryResponse out;
      grpc::Status s = rw_->RefreshRepository(&ctx, req, &out);
      ASSERT_TRUE(s.ok()) << s.error_message();
    }
    grpc::ClientContext ctx;
    v1::ApplyDeclarativeConfigRequest req;
    req.mutable_source()->set_repository_id("hostile");
    req.mutable_source()->set_ref("refs/heads/main");
    v1::ApplyDeclarativeConfigResponse out;
    grpc::Status s = pl_->ApplyDeclarativeConfig(&ctx, req, &out);
    ASSERT_TRUE(s.ok()) << s.error_message() << services_.planner->Log();
  }

  void ExpectAllServing() {
    for (ServiceProcess* p : Services()) {
      EXPECT_EQ(kill(p->pid(), 0), 0) << p->log_path() << " exited:\n" << p->Log();
      absl::Status serving = testing::WaitForServing(p->grpc_target(), absl::Seconds(10));
      EXPECT_TRUE(serving.ok()) << p->log_path() << ": " << serving;
      int64_t rss = PeakRssKiB(p->pid());
      EXPECT_GT(rss, 0);
      EXPECT_LT(rss, kRssBoundKiB) << p->log_path() << " peaked at " << rss / 1024 << " MiB";
      std::cout << "[ RSS      ] " << p->log_path() << ": peak " << rss / 1024 << " MiB\n";
    }
  }

  testing::TestDatabase db_;
  std::string dir_, bare_, work_, root_;
  testing::PlainServices services_;
  std::unique_ptr<v1::RepoWatcher::Stub> rw_;
  std::unique_ptr<v1::Planner::Stub> pl_;
  std::unique_ptr<v1::Deployer::Stub> dp_;
  std::unique_ptr<v1::Audit::Stub> au_;
};

TEST_F(HostileRepoTest, EveryBadApplicationFailsAloneAndTheGoodOnesDeploy) {
  std::vector<BadApp> bad = HostileApps();
  std::string binary("PNG\x89\r\n\x1a\n\0\0\0\rIHDR\xff\xfe\xfd\0end", 24);
  std::string yaml = absl::StrCat("environments:\n  local:\n    host: {rootDir: ", root_, "}\n    approval: auto\n",
                                  "applications:\n");
  std::vector<std::string> all = {"good", "good-binary"};
  for (const BadApp& a : bad) all.push_back(a.name);
  for (const std::string& name : all) {
    std::string render = "plain";
    for (const BadApp& a : bad)
      if (a.name == name) render = a.render;
    absl::StrAppend(&yaml, "  ", name, ":\n    path: apps/", name, "\n    render: ", render,
                    "\n    environments: [local]\n    sync: {automated: true, prune: true}\n    healthTimeout: 10s\n");
  }
  WriteFile(fs::path(work_) / "ferry.yaml", yaml);
  WriteApp("good", {{"deploy.yaml", ConfigFile("greeting", "good/greeting.txt", "  content: \"hello\\n\"")}});
  WriteApp("good-binary", {{"deploy.yaml", ConfigFile("logo", "good/logo.png", "  contentFrom: {file: logo.png}")},
                           {"logo.png", binary}});
  for (const BadApp& a : bad) WriteApp(a.name, a.files);
  Commit("hostile content beside good applications");
  std::string sha = HeadSha();

  StartServices();
  Register();
  RefreshAndDeclare();
  WaitFinished(all, sha, absl::Minutes(4));

  // The good applications deployed, byte for byte.
  for (std::string good : {"good", "good-binary"}) {
    auto p = LatestPlan(good);
    ASSERT_TRUE(p.has_value()) << good;
    EXPECT_EQ(p->state(), v1::PLAN_STATE_SUCCEEDED) << good << ": " << Story(good);
  }
  std::ifstream greeting(root_ + "/good/greeting.txt", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(greeting), {}), "hello\n");
  std::ifstream logo(root_ + "/good/logo.png", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(logo), {}), binary);

  // Each bad application failed alone, said why, and left an audit event.
  for (const BadApp& a : bad) {
    SCOPED_TRACE(a.name);
    auto p = LatestPlan(a.name);
    ASSERT_TRUE(p.has_value()) << "no plan at all";
    EXPECT_TRUE(p->state() == v1::PLAN_STATE_FAILED || p->state() == v1::PLAN_STATE_ROLLED_BACK)
        << Story(a.name) << "\nplan " << p->id() << " for " << p->target_revision().sha() << " (trigger "
        << v1::PlanTrigger_Name(p->trigger()) << "), its log lines:\n"
        << LogLinesAbout(a.name);
    std::string story = Story(a.name);
    std::cout << "[ REFUSED  ] " << a.name << ": " << story.substr(0, 400) << "\n";
    EXPECT_TRUE(std::regex_search(story, std::regex(a.expect, std::regex::icase)))
        << "expected /" << a.expect << "/ in: " << story.substr(0, 2000);
    EXPECT_FALSE(fs::exists("/etc/ferry-hostile"));
    // Services hand their events to the audit service through an outbox:
    // the event may land a moment after the plan's state changed.
    bool audited = false;
    for (absl::Time until = absl::Now() + absl::Seconds(30); !audited && absl::Now() < until;) {
      for (const v1::Event& e : Events(a.name)) {
        audited |= e.action() == v1::AUDIT_ACTION_RENDER_FAILED || e.action() == v1::AUDIT_ACTION_DEPLOYMENT_FAILED;
      }
      if (!audited) absl::SleepFor(absl::Milliseconds(250));
    }
    EXPECT_TRUE(audited) << "no RENDER_FAILED or DEPLOYMENT_FAILED audit event within 30 s";
  }
  ExpectAllServing();

  // Nothing is wedged: fixing one bad application deploys it, and the good
  // one follows a change too.
  WriteApp("bad-utf8", {{"deploy.yaml", ConfigFile("u", "u.txt", "  content: \"caf\xC3\xA9\"")}});
  WriteApp("good", {{"deploy.yaml", ConfigFile("greeting", "good/greeting.txt", "  content: \"hello again\\n\"")}});
  Commit("fix bad-utf8", /*push=*/false);
  // Its commit message and author in Latin-1, written as tools other than
  // git write them (raw bytes, no encoding header).
  std::string raw = absl::StrCat("tree ", GitOut({"-C", work_, "rev-parse", "HEAD^{tree}"}), "\nparent ",
                                 GitOut({"-C", work_, "rev-parse", "HEAD~1"}),
                                 "\nauthor M\xFCller <m@example.invalid> 1796460000 +0000\n"
                                 "committer M\xFCller <m@example.invalid> 1796460000 +0000\n\nCaf\xE9 fix\n");
  WriteFile(fs::path(dir_) / "raw-commit", raw);
  std::string fixed = GitOut({"-C", work_, "hash-object", "-t", "commit", "-w", dir_ + "/raw-commit"});
  ASSERT_EQ(Git({"-C", work_, "update-ref", "refs/heads/main", fixed}), 0);
  ASSERT_EQ(Git({"-C", work_, "push", "-q", bare_, "main"}), 0);
  {
    grpc::ClientContext ctx;
    v1::RefreshRepositoryRequest req;
    req.set_repository_id("hostile");
    req.set_wait(true);
    v1::RefreshRepositoryResponse out;
    ASSERT_TRUE(rw_->RefreshRepository(&ctx, req, &out).ok());
  }
  WaitFinished({"bad-utf8", "good"}, fixed, absl::Minutes(2));
  for (std::string app : {"bad-utf8", "good"}) {
    auto p = LatestPlan(app);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->state(), v1::PLAN_STATE_SUCCEEDED) << app << ": " << Story(app);
  }
  std::ifstream again(root_ + "/good/greeting.txt", std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(again), {}), "hello again\n");
  ExpectAllServing();
}

}  // namespace
}  // namespace ferry
