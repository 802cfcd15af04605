// HostTarget against the real machine: files under a temporary root and
// real processes (tests/deployer/testdata/server.py).

#include "services/deployer/host/host_target.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "services/deployer/host/health_probe.h"
#include "services/deployer/host/detached_process.h"
#include "services/deployer/host/self_protection.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/host/workload_policy.h"
#include "tests/deployer/test_util.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TargetObject Obj(const json& doc) {
  return TargetObject{ObjectKey{"ferry.dev", doc.value("kind", ""), "", doc["metadata"].value("name", "")}, doc.dump(),
                      "apps/web/" + doc["metadata"].value("name", "") + ".yaml", 0};
}

class HostTargetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = ferry::testing::MakeTempDir("host-target");
    target_ = std::make_unique<HostTarget>(root_);
  }
  void TearDown() override {
    testing::KillAllUnder(root_);
    // A killed group's other members (a shell's `sleep`) take a moment to exit.
    for (int i = 0; i < 100 && testing::CountProcessesUnder(root_) > 0; ++i) absl::SleepFor(absl::Milliseconds(10));
    EXPECT_EQ(testing::CountProcessesUnder(root_), 0) << "processes left behind";
  }
  absl::Status PrepareAndApply(const std::vector<json>& docs) {
    std::vector<TargetObject> objs;
    for (const json& d : docs) objs.push_back(Obj(d));
    absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, objs, nullptr);
    if (!prepared.ok()) return prepared.status();
    for (const TargetObject& o : *prepared) {
      absl::Status s = target_->Apply(app_, o, nullptr, absl::Now() + absl::Seconds(20), nullptr);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  std::string root_;
  AppScope app_{"web-app", "dev"};
  std::unique_ptr<HostTarget> target_;
};

TEST_F(HostTargetTest, RefusesUnknownKindNamingFileAndKindBeforeAnythingChanges) {
  json good = testing::ConfigFile("conf", "app.conf", "x=1\n");
  json bad = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", "web"}}}, {"spec", json::object()}};
  std::vector<TargetObject> objs = {Obj(good), Obj(bad)};
  absl::StatusOr<std::vector<TargetObject>> prepared = target_->Prepare(app_, objs, nullptr);
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(prepared.status().message().find("apps/web/web.yaml"), std::string::npos) << prepared.status();
  EXPECT_NE(prepared.status().message().find("Deployment"), std::string::npos) << prepared.status();
  json unknown_kind = {{"apiVersion", "ferry.dev/v1"}, {"kind", "Service"}, {"metadata", {{"name", "svc"}}}, {"spec", json::object()}};
  prepared = target_->Prepare(app_, {Obj(unknown_kind)}, nullptr);
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.status().message().find("unknown kind \"Service\""), std::string::npos) << prepared.status();
  EXPECT_FALSE(fs::exists(root_ + "/app.conf"));
  prepared = target_->Prepare(AppScope{"../escape", "dev"}, {Obj(good)}, nullptr);
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.status().message().find("application_id"), std::string::npos) << prepared.status();
}

TEST_F(HostTargetTest, RefusesPathsEscapingTheRoot) {
  fs::create_directories(root_ + "/inside");
  std::string outside = ferry::testing::MakeTempDir("outside");
  fs::create_directory_symlink(outside, root_ + "/link-out");
  fs::create_directory_symlink(root_ + "/inside", root_ + "/link-in");
  // Relative ones too: the whole path opened in one openat2 first, which
  // refuses this one, then the walk, which must refuse it as well.
  fs::create_directory_symlink(fs::relative(outside, root_), root_ + "/rel-out");
  fs::create_directory_symlink("inside", root_ + "/rel-in");
  for (const std::string& path : {std::string("../escape.conf"), std::string("a/../../escape.conf"),
                                  std::string("/etc/passwd"), std::string("link-out/escape.conf"),
                                  std::string("rel-out/escape.conf"), std::string("rel-in/../../escape.conf"),
                                  std::string("")}) {
    absl::StatusOr<std::vector<TargetObject>> r =
        target_->Prepare(app_, {Obj(testing::ConfigFile("conf", path, "x"))}, nullptr);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_NE(r.status().message().find("spec.path"), std::string::npos) << r.status();
  }
  EXPECT_TRUE(fs::is_empty(outside));
  // A symlink that stays inside the root is fine.
  ASSERT_TRUE(PrepareAndApply({testing::ConfigFile("conf", "link-in/ok.conf", "ok\n")}).ok());
  EXPECT_EQ(Read(root_ + "/inside/ok.conf"), "ok\n");
  ASSERT_TRUE(PrepareAndApply({testing::ConfigFile("conf", "rel-in/deeper/ok.conf", "ok\n")}).ok());
  EXPECT_EQ(Read(root_ + "/inside/deeper/ok.conf"), "ok\n");
}

TEST_F(HostTargetTest, ValidateFailureMeansTheFileNeverGoesLive) {
  ASSERT_TRUE(PrepareAndApply({testing::ConfigFile("conf", "etc/app.conf", "good=1\n")}).ok());
  json bad = testing::ConfigFile("conf", "etc/app.conf", "broken\n");
  bad["spec"]["validate"] = {{"command", {"/bin/grep", "-q", "good", "{path}"}}};
  absl::Status s = PrepareAndApply({bad});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("did not go live"), std::string::npos) << s;
  EXPECT_EQ(Read(root_ + "/etc/app.conf"), "good=1\n");
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root_ + "/etc")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1) << "staged file left behind";
  // The same validate passes a good file, which then goes live.
  json fine = testing::ConfigFile("conf", "etc/app.conf", "good=2\n");
  fine["spec"]["validate"] = bad["spec"]["validate"];
  ASSERT_TRUE(PrepareAndApply({fine}).ok());
  EXPECT_EQ(Read(root_ + "/etc/app.conf"), "good=2\n");
}

// Validate and reload commands come from Git: they run in a minimal
// environment, never the deployer's (which may hold its database URL).
TEST_F(HostTargetTest, CommandsDoNotSeeTheDeployersEnvironment) {
  setenv("FERRY_DATABASE_URL", "postgresql://ferry:s3cr3t@db/ferry", 1);
  json conf = testing::ConfigFile("conf", "etc/app.conf", "x\n");
  conf["spec"]["validate"] = {{"command", {"/bin/sh", "-c", "env; exit 1"}}};
  absl::Status s = PrepareAndApply({conf});
  unsetenv("FERRY_DATABASE_URL");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("PATH=/usr/local/sbin"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("s3cr3t"), std::string::npos) << s;
  EXPECT_EQ(s.message().find("FERRY_DATABASE_URL"), std::string::npos) << s;
}

// With SIGCHLD ignored the kernel reaps children itself, so waiting for a
// command fails (ECHILD) and its exit status is unknown: that is a failure,
// never "exited 0".
class IgnoredSigchld {
 public:
  IgnoredSigchld() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGCHLD, &ignore, &saved_);
  }
  ~IgnoredSigchld() { sigaction(SIGCHLD, &saved_, nullptr); }

 private:
  struct sigaction saved_ {};
};

TEST_F(HostTargetTest, AValidateCommandWhoseExitCannotBeCollectedDoesNotPass) {
  ASSERT_TRUE(PrepareAndApply({testing::ConfigFile("conf", "etc/app.conf", "good=1\n")}).ok());
  json bad = testing::ConfigFile("conf", "etc/app.conf", "broken\n");
  bad["spec"]["validate"] = {{"command", {"/bin/sh", "-c", "exit 1"}}};
  absl::Status s;
  {
    IgnoredSigchld ignored;
    s = PrepareAndApply({bad});
  }
  ASSERT_FALSE(s.ok()) << "a validate command whose wait failed passed";
  EXPECT_NE(s.message().find("did not go live"), std::string::npos) << s;
  EXPECT_EQ(Read(root_ + "/etc/app.conf"), "good=1\n");
}

TEST_F(HostTargetTest, AnExecProbeWhoseExitCannotBeCollectedFails) {
  ProbeResult r;
  {
    IgnoredSigchld ignored;
    r = ProbeExec({"/bin/false"}, absl::Seconds(10), root_);
  }
  EXPECT_FALSE(r.ok) << r.message;
  EXPECT_TRUE(ProbeExec({"/bin/true"}, absl::Seconds(10), root_).ok);
  EXPECT_FALSE(ProbeExec({"/bin/false"}, absl::Seconds(10), root_).ok);
}

TEST_F(HostTargetTest, ReloadCommandRunsAfterAGoodFileWithItsContentLive) {
  json f = testing::ConfigFile("conf", "app.conf", "v=2\n");
  f["spec"]["mode"] = "0600";
  f["spec"]["reload"] = {{"command", "cp app.conf reloaded-with"}};
  ASSERT_TRUE(PrepareAndApply({f}).ok());
  EXPECT_EQ(Read(root_ + "/reloaded-with"), "v=2\n");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/app.conf").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Unchanged content: nothing written, no reload.
  fs::remove(root_ + "/reloaded-with");
  ASSERT_TRUE(PrepareAndApply({f}).ok());
  EXPECT_FALSE(fs::exists(root_ + "/reloaded-with"));
}

TEST_F(HostTargetTest, EditedFileIsDriftAndMissingFileIsMissing) {
  json f = testing::ConfigFile("conf", "app.conf", "v=1\n");
  ASSERT_TRUE(PrepareAndApply({f}).ok());
  TargetObject applied = Obj(f);
  EXPECT_EQ(target_->Observe(app_, applied.key, &applied).drift, v1::DRIFT_STATUS_IN_SYNC);
  std::ofstream(root_ + "/app.conf") << "hacked\n";
  ObservedObject o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_NE(o.drift_message.find("content differs"), std::string::npos);
  fs::remove(root_ + "/app.conf");
  EXPECT_EQ(target_->Observe(app_, applied.key, &applied).drift, v1::DRIFT_STATUS_MISSING);
}

// The drift pass's look (issue #23): the same drift and health as Observe's,
// in sync, edited, re-moded, missing and replaced, without the live JSON.
TEST_F(HostTargetTest, ObserveStatusJudgesAsObserveWithoutTheLiveObject) {
  json f = testing::ConfigFile("conf", "etc/app.conf", "v=1\n");
  ASSERT_TRUE(PrepareAndApply({f}).ok());
  TargetObject applied = Obj(f);
  auto same = [&](const std::string& when) {
    ObservedObject full = target_->Observe(app_, applied.key, &applied);
    ObservedObject status = target_->ObserveStatus(app_, applied.key, &applied);
    EXPECT_EQ(status.drift, full.drift) << when;
    EXPECT_EQ(status.drift_message, full.drift_message) << when;
    EXPECT_EQ(status.health, full.health) << when;
    EXPECT_EQ(status.health_message, full.health_message) << when;
    EXPECT_EQ(status.exists, full.exists) << when;
    EXPECT_TRUE(status.live_json.empty()) << when;
    return full.drift;
  };
  EXPECT_EQ(same("in sync"), v1::DRIFT_STATUS_IN_SYNC);
  std::ofstream(root_ + "/etc/app.conf") << "hacked\n";
  EXPECT_EQ(same("edited"), v1::DRIFT_STATUS_MODIFIED);
  std::ofstream(root_ + "/etc/app.conf") << "v=1\n";
  ASSERT_EQ(chmod((root_ + "/etc/app.conf").c_str(), 0600), 0);
  EXPECT_EQ(same("re-moded"), v1::DRIFT_STATUS_MODIFIED);
  fs::remove(root_ + "/etc/app.conf");
  EXPECT_EQ(same("removed"), v1::DRIFT_STATUS_MISSING);
  fs::create_directory(root_ + "/etc/app.conf");
  EXPECT_EQ(same("a directory"), v1::DRIFT_STATUS_MISSING);
  fs::remove(root_ + "/etc/app.conf");
  fs::remove(root_ + "/etc");
  EXPECT_EQ(same("its folder removed"), v1::DRIFT_STATUS_MISSING);
}

TEST_F(HostTargetTest, ProcessesAreReadoptedAfterRestartWithoutBeingRestarted) {
  json p = testing::ServerProcess("web", "v1", 2);
  ASSERT_TRUE(PrepareAndApply({p}).ok());
  std::vector<Instance> before = target_->processes().LiveInstances("web-app", "web");
  ASSERT_EQ(before.size(), 2u);
  for (const Instance& i : before) {
    EXPECT_TRUE(ProbeHttp(i.ports.at("http"), "/", 200, absl::Seconds(2)).ok);
    EXPECT_EQ(getsid(i.identity.pid), i.identity.pid) << "not in a session of its own";
  }
  // A new target (a restarted deployer) sees the same instances in sync and
  // applying the same spec restarts nothing.
  HostTarget restarted(root_);
  TargetObject applied = Obj(p);
  absl::StatusOr<std::vector<TargetObject>> prepared = restarted.Prepare(app_, {applied}, nullptr);
  ASSERT_TRUE(prepared.ok());
  EXPECT_EQ(restarted.Observe(app_, applied.key, &(*prepared)[0]).drift, v1::DRIFT_STATUS_IN_SYNC);
  ASSERT_TRUE(restarted.Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(10), nullptr).ok());
  std::vector<Instance> after = restarted.processes().LiveInstances("web-app", "web");
  ASSERT_EQ(after.size(), 2u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(after[i].identity.pid, before[i].identity.pid);
  EXPECT_EQ(restarted.Health(app_, (*prepared)[0]).first, v1::HEALTH_STATUS_HEALTHY);
}

// Observing (drift detection, health, status) reads the instance records
// while a rollout writes them; a reader that finds a just-started instance
// without its pid records the pid itself. Both used to write through the
// same temporary file, and the rollout failed with "rename ...json.tmp".
TEST_F(HostTargetTest, ObservingWhileApplyingNeverFailsTheApply) {
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread observer([&] {
    while (!done) {
      target_->processes().LiveInstances("web-app", "web");
      ++reads;
    }
  });
  // Each rollout starts two instances; without the fix about one run in
  // ten failed with five rollouts.
  for (int v = 1; v <= 10; ++v) {
    absl::Status applied = PrepareAndApply({testing::ServerProcess("web", absl::StrCat("v", v), 2)});
    EXPECT_TRUE(applied.ok()) << "v" << v << ": " << applied;
  }
  done = true;
  observer.join();
  EXPECT_GT(reads.load(), 0);
  std::vector<Instance> live = target_->processes().LiveInstances("web-app", "web");
  ASSERT_EQ(live.size(), 2u);
  for (const Instance& i : live) EXPECT_NE(i.identity.pid, 0);
}

TEST_F(HostTargetTest, NewInstanceIsHealthySoonAfterItListensNotAPeriodLater) {
  // The first probe finds nothing listening; with a 10 s period a rollout
  // that waited a whole period would take 10 s. Start-up probes back off from
  // a few milliseconds to the period instead.
  json p = testing::ServerProcess("web", "v1", 1, {{"START_DELAY", "0.3"}});
  p["spec"]["healthCheck"]["periodSeconds"] = 10;
  absl::Time start = absl::Now();
  ASSERT_TRUE(PrepareAndApply({p}).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  std::vector<Instance> inst = target_->processes().LiveInstances("web-app", "web");
  ASSERT_EQ(inst.size(), 1u);
  EXPECT_TRUE(ProbeHttp(inst[0].ports.at("http"), "/healthz", 200, absl::Seconds(2)).ok);
}

TEST_F(HostTargetTest, StopWaitsForExitAndKillsAProgramIgnoringTheStopSignal) {
  absl::StatusOr<pid_t> polite = SpawnDetached({{"/bin/sleep", "30"}, {}, "", root_ + "/polite.log"});
  ASSERT_TRUE(polite.ok());
  ProcessIdentity p{*polite, ProcessStartTime(*polite)};
  absl::Time start = absl::Now();
  StopProcess(p, SIGTERM, absl::Seconds(10));
  EXPECT_FALSE(IsAlive(p));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "waited for the stop timeout although it had exited";
  absl::StatusOr<pid_t> stubborn =
      SpawnDetached({{"/bin/sh", "-c", "trap '' TERM; echo > \"$0\"; while true; do sleep 0.05; done", root_ + "/trap-set"},
                     {},
                     "",
                     root_ + "/stubborn.log"});
  ASSERT_TRUE(stubborn.ok());
  ProcessIdentity s{*stubborn, ProcessStartTime(*stubborn)};
  struct KillOnExit {  // even when an assertion below fails: it would run forever
    ProcessIdentity id;
    ~KillOnExit() {
      if (IsAlive(id)) StopProcess(id, SIGKILL, absl::Seconds(5));
    }
  } guard{s};
  // Until the shell has ignored SIGTERM, SIGTERM would end it.
  for (int i = 0; i < 250 && Read(root_ + "/trap-set").empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(Read(root_ + "/trap-set").empty()) << "the worker never started";
  StopProcess(s, SIGTERM, absl::Milliseconds(300));
  EXPECT_FALSE(IsAlive(s)) << "not killed after the stop timeout";
}

TEST_F(HostTargetTest, StalePidFileNeverSignalsTheProcessNowHoldingThatPid) {
  // A pid file naming a live, unrelated process but with another start time.
  absl::StatusOr<pid_t> bystander = SpawnDetached({{"/bin/sleep", "30"}, {}, "", root_ + "/sleep.log"});
  ASSERT_TRUE(bystander.ok());
  uint64_t start = ProcessStartTime(*bystander);
  ASSERT_NE(start, 0u);
  fs::create_directories(root_ + "/.ferry/run/web-app/web");
  json record = {{"id", "1-1"}, {"pid", *bystander}, {"start_time", start + 12345}, {"spec_hash", "x"},
                 {"ports", json::object()}, {"log_path", root_ + "/x.log"}, {"stop_signal", 15},
                 {"stop_timeout_ms", 1000}, {"spec", json::object()}};
  std::ofstream(root_ + "/.ferry/run/web-app/web/1-1.json") << record.dump();
  TargetObject p = Obj(testing::ServerProcess("web", "v1", 1));
  ASSERT_TRUE(target_->Delete(app_, p, absl::Now() + absl::Seconds(5)).ok());
  EXPECT_EQ(ProcessStartTime(*bystander), start) << "the bystander was signalled";
  StopProcess({*bystander, start}, SIGKILL, absl::Seconds(5));
}

TEST_F(HostTargetTest, LogsGoToFilesUnderTheRootWithASizeCap) {
  json p = testing::ServerProcess("web", "v1", 1);
  p["spec"]["command"] = {"/bin/sh", "-c", "while true; do echo 0123456789012345678901234567890123456789; sleep 0.01; done"};
  p["spec"].erase("healthCheck");
  p["spec"]["logs"] = {{"maxBytes", 2048}};
  ASSERT_TRUE(PrepareAndApply({p}).ok());
  std::vector<Instance> inst = target_->processes().LiveInstances("web-app", "web");
  ASSERT_EQ(inst.size(), 1u);
  EXPECT_EQ(inst[0].log_path.rfind(root_ + "/logs/", 0), 0u) << inst[0].log_path;
  // Wait until the process has written more than the cap (slow when the
  // machine is busy), then let Health enforce it.
  for (absl::Time deadline = absl::Now() + absl::Seconds(20);
       fs::file_size(inst[0].log_path) <= 2048u + 1024u && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(fs::file_size(inst[0].log_path), 2048u + 1024u) << "the process never wrote past the cap";
  TargetObject applied = Obj(p);
  target_->Health(app_, *target_->Prepare(app_, {applied}, nullptr)->begin());  // Enforces the cap.
  EXPECT_LE(fs::file_size(inst[0].log_path), 2048u + 1024u);
  EXPECT_TRUE(fs::exists(inst[0].log_path + ".1"));
}

}  // namespace
}  // namespace ferry::deployer::host

namespace ferry::deployer::host {
namespace {

TEST_F(HostTargetTest, ReloadSignalReachesTheNamedProcess) {
  json p = testing::ServerProcess("worker", "v1", 1);
  p["spec"]["command"] = {"/bin/sh", "-c",
                          "trap 'echo reloaded >> got-hup' HUP; echo > trap-set; while true; do sleep 0.05; done"};
  p["spec"].erase("healthCheck");
  p["spec"].erase("ports");
  json f = testing::ConfigFile("conf", "worker.conf", "a=1\n");
  ASSERT_TRUE(PrepareAndApply({p, f}).ok());
  // Until the shell has installed its trap, SIGHUP would end it.
  for (int i = 0; i < 250 && Read(root_ + "/trap-set").empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(Read(root_ + "/trap-set").empty()) << "the worker never started";
  f["spec"]["reload"] = {{"process", "worker"}, {"signal", "SIGHUP"}};
  f["spec"]["content"] = "a=2\n";
  ASSERT_TRUE(PrepareAndApply({p, f}).ok());
  for (int i = 0; i < 100 && Read(root_ + "/got-hup").empty(); ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(Read(root_ + "/got-hup"), "reloaded\n");
  // A reload naming a Process the application does not have is refused up front.
  f["spec"]["reload"]["process"] = "nope";
  absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {Obj(f)}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.reload.process"), std::string::npos) << r.status();
}

TEST_F(HostTargetTest, BadSpecsAreRefusedNamingTheField) {
  json p = testing::ServerProcess("web", "v1", 2);
  p["spec"]["ports"] = {{{"name", "http"}, {"port", 8080}}};
  absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {Obj(p)}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.ports[0].port"), std::string::npos) << r.status();
  json q = testing::ServerProcess("web", "v1", 1);
  q["spec"]["restartPolicy"] = "Sometimes";
  r = target_->Prepare(app_, {Obj(q)}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.restartPolicy"), std::string::npos) << r.status();
  json f = testing::ConfigFile("conf", "a.conf", "x");
  f["spec"]["mode"] = "rw-r--r--";
  r = target_->Prepare(app_, {Obj(f)}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.mode"), std::string::npos) << r.status();
  json g = testing::ConfigFile("conf", "a.conf", "x");
  g["spec"].erase("content");
  g["spec"]["contentFrom"] = {{"file", "a.conf"}};
  r = target_->Prepare(app_, {Obj(g)}, [](const std::string& source, const std::string& file) -> absl::StatusOr<std::string> {
    return source + ":" + file;
  });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(json::parse((*r)[0].json)["spec"]["content"], "apps/web/conf.yaml:a.conf");
}

// Prepare resolves contentFrom.file (checking its path); an object applied
// without it (a record that skipped Prepare) must not write an empty file.
TEST_F(HostTargetTest, AContentFromFileNeverPreparedIsRefusedByApplyAndNothingIsWritten) {
  for (const std::string& file : {std::string("a.conf"), std::string("../../../../../etc/passwd")}) {
    json g = testing::ConfigFile("conf", "e.txt", "x");
    g["spec"].erase("content");
    g["spec"]["contentFrom"] = {{"file", file}};
    absl::Status s = target_->Apply(app_, Obj(g), nullptr, absl::Now() + absl::Seconds(20), nullptr);
    ASSERT_FALSE(s.ok()) << file;
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(s.message().find("spec.contentFrom.file"), std::string::npos) << s;
    EXPECT_NE(s.message().find("never resolved"), std::string::npos) << s;
    EXPECT_FALSE(fs::exists(root_ + "/e.txt")) << file;
  }
}

TEST_F(HostTargetTest, RefusesSetuidSetgidAndStickyModesNamingObjectAndMode) {
  for (const std::string& mode : {std::string("4755"), std::string("2755"), std::string("1777"), std::string("6777")}) {
    json f = testing::ConfigFile("tool", "bin/tool", "#!/bin/sh\n");
    f["spec"]["mode"] = mode;
    absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {Obj(f)}, nullptr);
    ASSERT_FALSE(r.ok()) << mode;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("ConfigFile \"tool\": spec.mode: " + mode), std::string::npos) << r.status();
    EXPECT_NE(r.status().message().find("setuid"), std::string::npos) << r.status();
    // A plan prepared before the rule (or by hand) is refused at apply too.
    EXPECT_FALSE(target_->Apply(app_, Obj(f), nullptr, absl::Now() + absl::Seconds(5), nullptr).ok());
  }
  EXPECT_FALSE(fs::exists(root_ + "/bin/tool"));
  json ok = testing::ConfigFile("tool", "bin/tool", "#!/bin/sh\n");
  ok["spec"]["mode"] = "0777";
  ASSERT_TRUE(PrepareAndApply({ok}).ok());
  EXPECT_EQ(fs::status(root_ + "/bin/tool").permissions(), fs::perms::all);
}

TEST_F(HostTargetTest, ConfigFilesCannotWriteFerrysOwnState) {
  // The pid records the deployer signals, and program logs.
  fs::create_directories(root_ + "/.ferry/run/web-app/web");
  fs::create_directories(root_ + "/logs/web-app");
  fs::create_directory_symlink(root_ + "/.ferry/run", root_ + "/innocent");
  for (const std::string& path : {std::string(".ferry/run/web-app/web/0.json"), std::string("./.ferry/x"),
                                  std::string("logs/web-app/web.log"), std::string("innocent/web-app/web/0.json")}) {
    absl::StatusOr<std::vector<TargetObject>> r =
        target_->Prepare(app_, {Obj(testing::ConfigFile("forged", path, "{\"pid\": 1}"))}, nullptr);
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_NE(r.status().message().find("Ferry's own state"), std::string::npos) << r.status();
  }
  EXPECT_TRUE(fs::is_empty(root_ + "/.ferry/run/web-app/web"));
}

TEST_F(HostTargetTest, ADirectorySwappedForASymlinkAfterPrepareCannotMoveTheWrite) {
  std::string outside = ferry::testing::MakeTempDir("outside");
  fs::create_directories(root_ + "/conf");
  absl::StatusOr<std::vector<TargetObject>> prepared =
      target_->Prepare(app_, {Obj(testing::ConfigFile("conf", "conf/app.conf", "x\n"))}, nullptr);
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  // Between the plan's checks and the write, conf/ becomes a way out, then a
  // way into Ferry's state.
  fs::remove(root_ + "/conf");
  fs::create_directory_symlink(outside, root_ + "/conf");
  absl::Status s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(fs::is_empty(outside));
  fs::create_directories(root_ + "/.ferry/run");
  fs::remove(root_ + "/conf");
  fs::create_directory_symlink(root_ + "/.ferry/run", root_ + "/conf");
  s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(fs::is_empty(root_ + "/.ferry/run"));
  // The same with relative symlinks, which the one-call open of the whole
  // path resolves itself when they stay beneath the root.
  fs::remove(root_ + "/conf");
  fs::create_directory_symlink(fs::relative(outside, root_), root_ + "/conf");
  s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(fs::is_empty(outside));
  fs::remove(root_ + "/conf");
  fs::create_directory_symlink(".ferry/run", root_ + "/conf");
  s = target_->Apply(app_, (*prepared)[0], nullptr, absl::Now() + absl::Seconds(5), nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_TRUE(fs::is_empty(root_ + "/.ferry/run"));
}

// #17's "done when": an application that tries to read the deployer's
// environment, write outside its root, write into Ferry's own state and set
// a setuid bit fails at every attempt while the application itself runs.
// Needs root, to run the workload as another uid (--workload-user).
TEST_F(HostTargetTest, AConfinedApplicationFailsEveryAttemptOnTheDeployerWhileItRuns) {
  if (getuid() != 0) GTEST_SKIP() << "needs root to run the workload as another uid";
  ASSERT_TRUE(MakeNonDumpable().ok());  // This test process is the deployer.
  WorkloadIdentity nobody{65534, 65534, "65534"};
  target_ = std::make_unique<HostTarget>(root_, nobody);
  fs::permissions(root_, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  std::string outside = ferry::testing::MakeTempDir("outside");
  fs::permissions(outside, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  fs::create_directory_symlink(outside, root_ + "/link-out");
  // Through the deployer: each object is refused before anything changes.
  json forged = testing::ConfigFile("forged", ".ferry/run/web-app/attacker/0.json", "{\"pid\": 1}");
  json escape = testing::ConfigFile("escape", "link-out/escape.conf", "x");
  json setuid = testing::ConfigFile("setuid", "bin/shell", "#!/bin/sh\n");
  setuid["spec"]["mode"] = "4755";
  for (const json& doc : {forged, escape, setuid}) {
    absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {Obj(doc)}, nullptr);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << doc.dump();
  }
  // From the running process itself.
  json conf = testing::ConfigFile("conf", "etc/app.conf", "a=1\n");
  // Its validate and reload commands run as the workload user too.
  conf["spec"]["validate"] = {{"command", "test \"$(id -u)\" = 65534 && test -r {path}"}};
  conf["spec"]["reload"] = {{"command", "test \"$(id -u)\" = 65534"}};
  json attacker = {
      {"apiVersion", "ferry.dev/v1"},
      {"kind", "Process"},
      {"metadata", {{"name", "attacker"}}},
      {"spec",
       {{"command",
         "try() { what=$1; shift; if (\"$@\") >/dev/null 2>&1; then echo \"$what: SUCCEEDED\"; "
         "else echo \"$what: refused\"; fi; }; "
         "echo \"running as $(id -u)\"; "
         "try environ cat /proc/$DEPLOYER_PID/environ; "
         "try outside sh -c \"echo x > $OUTSIDE/escape\"; "
         "try pid-record sh -c \"echo '{}' > $FERRY_INSTANCE\"; "
         "try ferry-state sh -c \"echo x > $HOME/.ferry/run/forged.json\"; "
         "try logs sh -c \"echo x > $HOME/logs/forged.log\"; "
         "try root-file sh -c \"echo x > $HOME/etc/app.conf\"; "
         "try setuid chmod u+s $HOME/etc/app.conf; "
         "echo finished; exec sleep 60"},
        {"env",
         {{{"name", "DEPLOYER_PID"}, {"value", std::to_string(getpid())}}, {{"name", "OUTSIDE"}, {"value", outside}}}},
        {"restartPolicy", "Never"}}}};
  ASSERT_TRUE(PrepareAndApply({conf, attacker}).ok());
  std::string log;
  for (int i = 0; i < 500 && log.find("finished") == std::string::npos; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
    log.clear();
    for (const auto& e : fs::directory_iterator(root_ + "/logs/web-app/attacker")) log += Read(e.path().string());
  }
  ASSERT_NE(log.find("finished"), std::string::npos) << log;
  EXPECT_NE(log.find("running as 65534"), std::string::npos) << log;
  for (const char* attempt : {"environ", "outside", "pid-record", "ferry-state", "logs", "root-file", "setuid"}) {
    EXPECT_NE(log.find(std::string(attempt) + ": refused"), std::string::npos) << attempt << "\n" << log;
  }
  EXPECT_EQ(log.find("SUCCEEDED"), std::string::npos) << log;
  EXPECT_TRUE(fs::is_empty(outside));
  EXPECT_FALSE(fs::exists(root_ + "/.ferry/run/web-app/attacker/0.json"));
  EXPECT_FALSE(fs::exists(root_ + "/bin/shell"));
  EXPECT_EQ(Read(root_ + "/etc/app.conf"), "a=1\n");
  EXPECT_EQ(fs::status(root_ + "/etc/app.conf").permissions() & fs::perms::set_uid, fs::perms::none);
  // The application itself runs, managed by the deployer.
  EXPECT_EQ(testing::CountProcessesUnder(root_), 1);
}

// The Uid: and Gid: lines of /proc/<pid>/status ("Uid:\t40001\t40001\t40001\t40001").
std::pair<std::string, std::string> IdsOf(pid_t pid) {
  std::string uid, gid;
  std::istringstream in(Read("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Uid:", 0) == 0) uid = line.substr(4);
    if (line.rfind("Gid:", 0) == 0) gid = line.substr(4);
  }
  return {uid, gid};
}

// Each environment's runAs: its Process instances, validate and reload
// commands and exec probes run as its own uid and gid, never the deployer's.
// Needs root, to switch uid.
TEST_F(HostTargetTest, TwoEnvironmentsWithDifferentRunAsRunTheirProcessesAsTheirOwnUids) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run workloads as other uids (runAs)";
  fs::permissions(root_, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  HostTargetFactory factory{RootPolicy({root_}), WorkloadPolicy()};
  struct Env {
    std::string root, user, group, uid, gid;
  };
  const std::vector<Env> envs = {{root_ + "/a", "40001", "40011", "40001", "40011"},
                                 {root_ + "/b", "nobody", "", "65534", "65534"}};
  std::vector<pid_t> pids;
  for (const Env& e : envs) {
    v1::DeployTarget t;
    t.set_kind(v1::TARGET_KIND_HOST);
    t.mutable_host()->set_root_dir(e.root);
    t.mutable_host()->mutable_run_as()->set_user(e.user);
    t.mutable_host()->mutable_run_as()->set_group(e.group);
    absl::StatusOr<Target*> target = factory.For(t);
    ASSERT_TRUE(target.ok()) << target.status();
    std::string ids = "test \"$(id -u):$(id -g)\" = " + e.uid + ":" + e.gid;
    json conf = testing::ConfigFile("conf", "etc/app.conf", "a=1\n");
    conf["spec"]["validate"] = {{"command", ids + " && test -r {path}"}};
    conf["spec"]["reload"] = {{"command", ids}};
    json worker = {{"apiVersion", "ferry.dev/v1"},
                   {"kind", "Process"},
                   {"metadata", {{"name", "worker"}}},
                   {"spec",
                    {{"command", "exec sleep 60"},
                     {"healthCheck", {{"exec", {{"command", ids}}}, {"periodSeconds", 0.05}}}}}};
    absl::StatusOr<std::vector<TargetObject>> prepared = (*target)->Prepare(app_, {Obj(conf), Obj(worker)}, nullptr);
    ASSERT_TRUE(prepared.ok()) << prepared.status();
    for (const TargetObject& o : *prepared) {
      absl::Status s = (*target)->Apply(app_, o, nullptr, absl::Now() + absl::Seconds(10), nullptr);
      ASSERT_TRUE(s.ok()) << e.user << ": " << s;  // validate, reload and the exec probe passed as that uid
    }
    std::vector<Instance> live = static_cast<HostTarget*>(*target)->processes().LiveInstances("web-app", "worker");
    ASSERT_EQ(live.size(), 1u);
    pids.push_back(live[0].identity.pid);
    auto [uid, gid] = IdsOf(live[0].identity.pid);
    std::string want_uid = "\t" + e.uid + "\t" + e.uid + "\t" + e.uid + "\t" + e.uid;
    std::string want_gid = "\t" + e.gid + "\t" + e.gid + "\t" + e.gid + "\t" + e.gid;
    EXPECT_EQ(uid, want_uid) << e.user;
    EXPECT_EQ(gid, want_gid) << e.user;
    // The deployer's own pid record and log stay the deployer's.
    EXPECT_EQ(fs::status(e.root + "/.ferry/run").permissions() & fs::perms::others_write, fs::perms::none);
  }
  EXPECT_NE(pids[0], pids[1]);
  for (const Env& e : envs) testing::KillAllUnder(e.root);
}

// A runAs change is a change of what runs: the instances started as the old
// user show as drift and the next apply replaces them.
TEST_F(HostTargetTest, AChangedRunAsShowsAsDriftAndReplacesTheInstances) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run workloads as other uids (runAs)";
  fs::permissions(root_, fs::perms::owner_all | fs::perms::others_read | fs::perms::others_exec);
  json worker = {{"apiVersion", "ferry.dev/v1"},
                 {"kind", "Process"},
                 {"metadata", {{"name", "worker"}}},
                 {"spec", {{"command", "exec sleep 60"}}}};
  target_ = std::make_unique<HostTarget>(root_, WorkloadIdentity{40001, 40001, "40001"});
  ASSERT_TRUE(PrepareAndApply({worker}).ok());
  TargetObject o = Obj(worker);
  EXPECT_EQ(target_->Observe(app_, o.key, &o).drift, v1::DRIFT_STATUS_IN_SYNC);
  target_ = std::make_unique<HostTarget>(root_, WorkloadIdentity{40002, 40002, "40002"});
  ObservedObject drift = target_->Observe(app_, o.key, &o);
  EXPECT_EQ(drift.drift, v1::DRIFT_STATUS_MODIFIED) << drift.drift_message;
  ASSERT_TRUE(PrepareAndApply({worker}).ok());
  std::vector<Instance> live = target_->processes().LiveInstances("web-app", "worker");
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(IdsOf(live[0].identity.pid).first, "\t40002\t40002\t40002\t40002");
  EXPECT_EQ(target_->Observe(app_, o.key, &o).drift, v1::DRIFT_STATUS_IN_SYNC);
}

// Modes above 0777 only where the environment allows them; the file then
// belongs to the workload's user, so setuid never means the deployer's uid.
TEST_F(HostTargetTest, ASetuidModeIsWrittenOnlyWithTheEnvironmentsOption) {
  json tool = testing::ConfigFile("tool", "bin/tool", "#!/bin/sh\nid -u\n");
  tool["spec"]["mode"] = "4755";
  absl::Status refused = PrepareAndApply({tool});
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
  EXPECT_NE(refused.message().find("allowSpecialModes"), std::string::npos) << refused;
  EXPECT_FALSE(fs::exists(root_ + "/bin/tool"));
  bool root = geteuid() == 0;
  WorkloadIdentity who = root ? WorkloadIdentity{65534, 65534, "nobody"} : WorkloadIdentity{};
  target_ = std::make_unique<HostTarget>(root_, who, /*allow_special_modes=*/true);
  ASSERT_TRUE(PrepareAndApply({tool}).ok());
  struct stat st;
  ASSERT_EQ(stat((root_ + "/bin/tool").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  if (root) {
    EXPECT_EQ(st.st_uid, 65534u) << "a setuid file of the workload's user, not root's";
    EXPECT_EQ(st.st_gid, 65534u);
  }
  TargetObject o = Obj(tool);
  EXPECT_EQ(target_->Observe(app_, o.key, &o).drift, v1::DRIFT_STATUS_IN_SYNC);
}

// Deletes and observations go through descriptors opened beneath the root,
// like writes: a directory swapped for a symlink after planning moves
// neither out of the root nor into Ferry's own state.
TEST_F(HostTargetTest, ADeleteThroughASymlinkSwappedInAfterPlanningRemovesNothingOutsideTheRootOrInFerrysState) {
  json conf = testing::ConfigFile("conf", "conf/0.json", "{}\n");
  ASSERT_TRUE(PrepareAndApply({conf}).ok());
  TargetObject applied = Obj(conf);
  std::string outside = ferry::testing::MakeTempDir("outside");
  std::ofstream(outside + "/0.json") << "keep";
  fs::remove_all(root_ + "/conf");
  fs::create_directory_symlink(outside, root_ + "/conf");
  ObservedObject o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.live_json.find("keep"), std::string::npos) << "read outside the root: " << o.live_json;
  EXPECT_NE(o.drift, v1::DRIFT_STATUS_IN_SYNC);
  (void)target_->Delete(app_, applied, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(Read(outside + "/0.json"), "keep");
  // Into the pid records the deployer trusts (inside the root, so the
  // string check alone let it through).
  std::string run = root_ + "/.ferry/run/web-app/web";
  fs::create_directories(run);
  std::ofstream(run + "/0.json") << "{\"pid\": 1}";
  fs::remove(root_ + "/conf");
  fs::create_directory_symlink(run, root_ + "/conf");
  absl::Status s = target_->Delete(app_, applied, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find(".ferry"), std::string::npos) << s;
  EXPECT_TRUE(fs::exists(run + "/0.json")) << "a pid record was deleted through the swapped directory";
  o = target_->Observe(app_, applied.key, &applied);
  EXPECT_EQ(o.live_json.find("pid"), std::string::npos) << o.live_json;
  // An ordinary delete still removes the file; a missing directory is fine.
  fs::remove(root_ + "/conf");
  ASSERT_TRUE(PrepareAndApply({conf}).ok());
  EXPECT_TRUE(target_->Delete(app_, applied, absl::Now() + absl::Seconds(5)).ok());
  EXPECT_FALSE(fs::exists(root_ + "/conf/0.json"));
  fs::remove_all(root_ + "/conf");
  EXPECT_TRUE(target_->Delete(app_, applied, absl::Now() + absl::Seconds(5)).ok());
  EXPECT_EQ(target_->Observe(app_, applied.key, &applied).drift, v1::DRIFT_STATUS_MISSING);
}

// The applied file itself swapped for a symlink (out of the root, or to a
// file inside it): the file applied is missing, whatever the link points
// at, and nothing is read through it. (The check found where the path
// leads by walking its string first, then through descriptors; the string
// walk is gone, so an escaping link showed UNKNOWN before.)
TEST_F(HostTargetTest, AFileSwappedForASymlinkIsMissingAndNotReadThrough) {
  json conf = testing::ConfigFile("conf", "conf/0.json", "{}\n");
  ASSERT_TRUE(PrepareAndApply({conf}).ok());
  TargetObject applied = Obj(conf);
  std::string outside = ferry::testing::MakeTempDir("outside");
  std::ofstream(outside + "/0.json") << "outside-bytes";
  std::ofstream(root_ + "/other.json") << "inside-bytes";
  for (const std::string& to : {outside + "/0.json", root_ + "/other.json"}) {
    fs::remove(root_ + "/conf/0.json");
    fs::create_symlink(to, root_ + "/conf/0.json");
    ObservedObject o = target_->Observe(app_, applied.key, &applied);
    EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MISSING) << to << ": " << o.drift_message << o.health_message;
    EXPECT_NE(o.drift_message.find("symlink"), std::string::npos) << o.drift_message;
    EXPECT_EQ(o.live_json.find("-bytes"), std::string::npos) << o.live_json;
  }
}

// A PNG-like file: NUL and 0xFF bytes, not UTF-8.
const std::string kBinary = std::string("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01", 20) + std::string(300, '\xff');

TEST_F(HostTargetTest, BinaryContentIsWrittenByteForByteAndDriftIsByDigest) {
  json g = testing::ConfigFile("logo", "logo.png", "x");
  g["spec"].erase("content");
  g["spec"]["contentFrom"] = {{"file", "logo.png"}};
  absl::StatusOr<std::vector<TargetObject>> r =
      target_->Prepare(app_, {Obj(g)}, [](const std::string&, const std::string&) -> absl::StatusOr<std::string> {
        return kBinary;
      });
  ASSERT_TRUE(r.ok()) << r.status();
  json prepared = json::parse((*r)[0].json);  // valid UTF-8 JSON: the bytes are base64
  EXPECT_FALSE(prepared["spec"].contains("content"));
  ASSERT_TRUE(prepared["spec"].contains("contentBase64"));
  ASSERT_TRUE(target_->Apply(app_, (*r)[0], nullptr, absl::Now() + absl::Seconds(20), nullptr).ok());
  std::ifstream in(root_ + "/logo.png", std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(written, kBinary) << "written byte for byte";
  ObservedObject o = target_->Observe(app_, (*r)[0].key, &(*r)[0]);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_IN_SYNC) << o.drift_message;
  EXPECT_EQ(json::parse(o.live_json)["spec"]["contentBase64"], prepared["spec"]["contentBase64"]);
  std::string edited = kBinary;
  edited[10] = '\x01';
  std::ofstream(root_ + "/logo.png", std::ios::binary) << edited;
  o = target_->Observe(app_, (*r)[0].key, &(*r)[0]);
  EXPECT_EQ(o.drift, v1::DRIFT_STATUS_MODIFIED);
  EXPECT_NE(o.drift_message.find("sha256"), std::string::npos) << o.drift_message;
  // Inline contentBase64 in a manifest works the same way; bad base64 is named.
  json h = testing::ConfigFile("icon", "icon.bin", "x");
  h["spec"].erase("content");
  h["spec"]["contentBase64"] = prepared["spec"]["contentBase64"];
  ASSERT_TRUE(PrepareAndApply({h}).ok());
  std::ifstream in2(root_ + "/icon.bin", std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>()), kBinary);
  h["spec"]["contentBase64"] = "%%% not base64";
  absl::Status bad = PrepareAndApply({h});
  EXPECT_NE(bad.message().find("spec.contentBase64"), std::string::npos) << bad;
}

TEST_F(HostTargetTest, AManifestThatIsNotUtf8IsAClearErrorNamingTheFile) {
  TargetObject o = Obj(testing::ConfigFile("conf", "a.conf", "x"));
  o.json = "{\"apiVersion\":\"ferry.dev/v1\",\"kind\":\"ConfigFile\",\"metadata\":{\"name\":\"conf\"},"
           "\"spec\":{\"path\":\"a.conf\",\"content\":\"\xff\xfe\"}}";
  absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {o}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("apps/web/conf.yaml"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("UTF-8"), std::string::npos) << r.status();
}

TEST_F(HostTargetTest, HundredKilobyteNamesAreClearErrorsNotAStackOverflow) {
  // std::regex recursed once per character: a 100 KB port name from Git
  // overflowed the deployer's stack (SIGSEGV).
  const std::string huge(100 * 1024, 'a');
  json p = testing::ServerProcess("web", "v1", 1);
  p["spec"]["ports"] = {{{"name", huge}}};
  absl::StatusOr<std::vector<TargetObject>> r = target_->Prepare(app_, {Obj(p)}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.ports[0].name"), std::string::npos) << r.status().message().substr(0, 300);
  EXPECT_LT(r.status().message().size(), 1000u) << "the name is cut in the message";
  TargetObject f = Obj(testing::ConfigFile(huge, "a.conf", "x"));
  f.source_path = "apps/web/huge.yaml";
  r = target_->Prepare(app_, {f}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("metadata.name"), std::string::npos) << r.status().message().substr(0, 300);
  EXPECT_LT(r.status().message().size(), 1000u);
  r = target_->Prepare(AppScope{huge, "dev"}, {Obj(testing::ConfigFile("conf", "a.conf", "x"))}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("application_id"), std::string::npos) << r.status().message().substr(0, 300);
  EXPECT_LT(r.status().message().size(), 1000u);
  // Valid names still pass.
  json ok = testing::ServerProcess("web", "v1", 1);
  ok["spec"]["ports"] = {{{"name", "http"}}, {{"name", "metrics_2"}}};
  EXPECT_TRUE(target_->Prepare(app_, {Obj(ok)}, nullptr).ok());
}

}  // namespace
}  // namespace ferry::deployer::host
