// Measurements for bench/repo-watcher/run (reported, never a timed test).
//
//   repo_watcher_bench refcheck <repos-dir> <count> <repeats>
//     In-process ref checks of <count> local repositories <repos-dir>/r<i>.git,
//     one after the other: every ref (Libgit2Client::ListRemoteRefs, i.e.
//     git_remote_connect + git_remote_ls: the full check), then the tracked
//     ones as the scheduled check reads them (ListRemoteRefsFor: branch main;
//     branch main and tags v*). Prints the wall time of each full round in
//     seconds as JSON.
//   repo_watcher_bench latency <database-url> <work-dir> <pushes>
//     Starts ferry-repo-watcher, registers a local repository (poll interval
//     1h, so only webhooks trigger), then per push: commit + push with the git
//     CLI (untimed), POST a signed GitHub webhook and time until the revision
//     arrives on WatchRevisions. Prints the latencies in milliseconds as JSON.

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/concurrency/mutex.h"
#include "common/git/libgit2_client.h"
#include "ferry/v1/repo_watcher.grpc.pb.h"
#include "services/repo-watcher/webhook_handler.h"
#include "tests/repo-watcher/git_test_repo.h"
#include "tests/support/service_process.h"

namespace {

using ferry::testing::RunCommand;

int RefCheck(const std::string& dir, int count, int repeats) {
  ferry::git::Libgit2Client client;
  // 0: every ref; 1: branch main; 2: branch main and tags v*.
  const ferry::git::RefPatterns tracked[] = {{}, {{"main"}, {}}, {{"main"}, {"v*"}}};
  std::vector<double> rounds[3];
  for (int way = 0; way < 3; ++way) {
    for (int r = 0; r < repeats; ++r) {
      absl::Time t0 = absl::Now();
      for (int i = 0; i < count; ++i) {
        const std::string url = absl::StrCat(dir, "/r", i, ".git");
        auto refs = way == 0 ? client.ListRemoteRefs(url, {}) : client.ListRemoteRefsFor(url, {}, tracked[way]);
        if (!refs.ok() || refs->size() < (way == 1 ? 1u : 2u)) {
          std::cerr << "ref check failed for r" << i << ": " << refs.status() << "\n";
          return 1;
        }
      }
      rounds[way].push_back(absl::ToDoubleSeconds(absl::Now() - t0));
    }
  }
  std::cout << "{\"rounds_s\": [" << absl::StrJoin(rounds[0], ", ") << "], \"branch_rounds_s\": ["
            << absl::StrJoin(rounds[1], ", ") << "], \"tracked_rounds_s\": [" << absl::StrJoin(rounds[2], ", ")
            << "]}\n";
  return 0;
}

bool Git(const std::string& home, const std::vector<std::string>& args) {
  std::vector<std::string> env = {"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_AUTHOR_NAME=Bench",
                                  "GIT_AUTHOR_EMAIL=bench@ferry.example", "GIT_COMMITTER_NAME=Bench",
                                  "GIT_COMMITTER_EMAIL=bench@ferry.example"};
  std::vector<std::string> argv = {"git"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = RunCommand(argv, absl::Seconds(60), env);
  if (r.exit_code != 0) std::cerr << absl::StrJoin(argv, " ") << ": " << r.output << "\n";
  return r.exit_code == 0;
}

int Latency(const std::string& db_url, const std::string& dir, int pushes) {
  std::string home = dir + "/home", remote = dir + "/remote.git", work = dir + "/work";
  std::filesystem::create_directories(home);
  std::ofstream(dir + "/secret") << "bench-secret\n";
  if (!Git(home, {"init", "-q", "--bare", "-b", "main", remote}) || !Git(home, {"init", "-q", "-b", "main", work}) ||
      !Git(home, {"-C", work, "commit", "-q", "--allow-empty", "-m", "c0"}) ||
      !Git(home, {"-C", work, "push", "-q", remote, "main"})) {
    return 1;
  }
  int webhook_port = ferry::testing::FreePort();
  auto svc = ferry::testing::ServiceProcess::Start(
      "ferry-repo-watcher", {"--database-url=" + db_url, "--cache-dir=" + dir + "/cache",
                             absl::StrCat("--webhook-address=127.0.0.1:", webhook_port),
                             "--audit-address=127.0.0.1:1", "--log-level=warn", "--secrets-dir=" + dir});
  if (!svc.ok()) {
    std::cerr << svc.status() << "\n";
    return 1;
  }
  auto stub = ferry::v1::RepoWatcher::NewStub(
      grpc::CreateChannel((*svc)->grpc_target(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    ferry::v1::CreateRepositoryRequest req;
    req.mutable_repository()->set_id("bench");
    req.mutable_repository()->set_url(remote);
    req.mutable_repository()->mutable_poll_interval()->set_seconds(3600);
    req.mutable_repository()->mutable_webhook_secret()->set_file(dir + "/secret");
    ferry::v1::Repository out;
    grpc::Status s = stub->CreateRepository(&ctx, req, &out);
    if (!s.ok()) {
      std::cerr << s.error_message() << "\n";
      return 1;
    }
  }
  ferry::Mutex mu;
  ferry::CondVar cv;
  std::vector<std::pair<std::string, absl::Time>> seen;  // under mu
  grpc::ClientContext watch_ctx;
  std::thread watcher([&] {
    auto reader = stub->WatchRevisions(&watch_ctx, ferry::v1::WatchRevisionsRequest());
    ferry::v1::WatchRevisionsResponse msg;
    while (reader->Read(&msg)) {
      ferry::MutexLock lock(&mu);
      seen.emplace_back(msg.revision().sha(), absl::Now());
      cv.SignalAll();
    }
    reader->Finish();
  });
  {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    ferry::MutexLock lock(&mu);
    while (seen.empty() && !cv.WaitWithDeadline(&mu, deadline)) {
    }
    if (seen.empty()) {
      std::cerr << "initial revision never arrived\n";
      return 1;
    }
  }
  auto finish = [&](int code) {
    watch_ctx.TryCancel();
    if (watcher.joinable()) watcher.join();
    (void)(*svc)->Stop();
    return code;
  };
  httplib::Client hook("127.0.0.1", webhook_port);
  hook.set_tcp_nodelay(true);
  hook.set_keep_alive(true);
  std::vector<double> ms;
  const std::string body = R"({"ref":"refs/heads/main"})";
  const std::string signature = "sha256=" + ferry::repo_watcher::HmacSha256Hex("bench-secret", body);
  for (int i = 1; i <= pushes; ++i) {
    if (!Git(home, {"-C", work, "commit", "-q", "--allow-empty", "-m", absl::StrCat("c", i)}) ||
        !Git(home, {"-C", work, "push", "-q", remote, "main"})) {
      return finish(1);
    }
    size_t before;
    {
      ferry::MutexLock lock(&mu);
      before = seen.size();
    }
    absl::Time t0 = absl::Now();
    auto res = hook.Post("/webhooks/github/bench", {{"X-GitHub-Event", "push"}, {"X-Hub-Signature-256", signature}},
                         body, "application/json");
    if (!res || res->status != 202) {
      std::cerr << "webhook failed: " << (res ? res->status : -1) << "\n" << (*svc)->Log();
      return finish(1);
    }
    bool arrived = false;
    absl::Time arrived_at;
    {
      const absl::Time deadline = absl::Now() + absl::Seconds(20);
      ferry::MutexLock lock(&mu);
      while (seen.size() <= before && !cv.WaitWithDeadline(&mu, deadline)) {
      }
      arrived = seen.size() > before;
      if (arrived) arrived_at = seen.back().second;
    }
    if (!arrived) {
      std::cerr << "revision " << i << " never arrived\n";
      return finish(1);
    }
    ms.push_back(absl::ToDoubleMilliseconds(arrived_at - t0));
  }
  finish(0);
  std::cout << "{\"latencies_ms\": [" << absl::StrJoin(ms, ", ") << "]}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "refcheck" && argc == 5) return RefCheck(argv[2], std::stoi(argv[3]), std::stoi(argv[4]));
  if (mode == "latency" && argc == 5) return Latency(argv[2], argv[3], std::stoi(argv[4]));
  std::cerr << "usage: repo_watcher_bench refcheck <repos-dir> <count> <repeats>\n"
               "       repo_watcher_bench latency <database-url> <work-dir> <pushes>\n";
  return 2;
}
