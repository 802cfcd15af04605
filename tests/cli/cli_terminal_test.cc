// The ferry command in a real terminal (tmux): colour where the terminal
// takes it and not with NO_COLOR, a progress line redrawn in place while a
// deployment runs, and Ctrl-C that stops the waiting but not what it waits
// for.

#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/json/json.h"
#include "common/process/run_process.h"
#include "tests/cli/cli_harness.h"

namespace ferry::testing {
namespace {

class Tmux {
 public:
  explicit Tmux(const std::string& config) : config_(config) {
    socket_ = absl::StrCat("ferry-cli-test-", ::getpid());
  }
  ~Tmux() { (void)Call({"kill-server"}); }

  // Starts `command` in a new window (a 160x40 terminal).
  void Start(const std::string& name, const std::string& command, const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"new-session", "-d", "-s", name, "-x", "160", "-y", "40",
                                     "-e", "FERRY_CONFIG=" + config_, "-e", "TERM=xterm-256color"};
    for (const auto& e : env) args.insert(args.end(), {"-e", e});
    args.push_back(command + "; echo \"exit=$?\"; sleep 600");
    process::ProcessResult r = Call(args);
    ASSERT_TRUE(r.succeeded()) << r.stderr_text;
  }
  // The screen and its history, with colour escapes (-e).
  std::string Screen(const std::string& name) {
    return Call({"capture-pane", "-p", "-e", "-J", "-S", "-200", "-t", name}).stdout_text;
  }
  void Keys(const std::string& name, const std::string& keys) { (void)Call({"send-keys", "-t", name, keys}); }
  // Waits until the screen holds `text`; returns the screen.
  std::string WaitFor(const std::string& name, const std::string& text, absl::Duration timeout = absl::Seconds(90)) {
    absl::Time end = absl::Now() + timeout;
    std::string s;
    while (absl::Now() < end) {
      s = Screen(name);
      if (absl::StrContains(s, text)) return s;
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "no \"" << text << "\" on the screen:\n" << s;
    return s;
  }

 private:
  process::ProcessResult Call(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/tmux", "-L", socket_, "-f", "/dev/null"};
    argv.insert(argv.end(), args.begin(), args.end());
    process::ProcessOptions o;
    o.env = {"PATH=/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMUX_TMPDIR=/tmp"};
    o.timeout = absl::Seconds(20);
    absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, o);
    return r.ok() ? *r : process::ProcessResult();
  }
  std::string socket_;
  std::string config_;
};

TEST(CliTerminalTest, ColourProgressAndCtrlC) {
  SecureSuite suite;
  ASSERT_TRUE(suite.Start());
  ASSERT_TRUE(suite.Seed());
  CliHarness cli(suite);
  Tmux tmux(cli.config_path());
  const std::string ferry = CliHarness::Binary();

  // Colour on a terminal: the diff's added lines are green.
  tmux.Start("diff", ferry + " app diff web --env prod");
  std::string screen = tmux.WaitFor("diff", "exit=0");
  EXPECT_TRUE(absl::StrContains(screen, "\x1b[32m+")) << screen;
  // ...and none with NO_COLOR.
  tmux.Start("plain", ferry + " app diff web --env prod", {"NO_COLOR=1"});
  screen = tmux.WaitFor("plain", "exit=0");
  EXPECT_TRUE(absl::StrContains(screen, "+++ desired/ConfigFile/greeting")) << screen;
  EXPECT_FALSE(absl::StrContains(screen, "\x1b[32m")) << screen;

  // Progress: a process whose health check passes after 3 s shows the
  // running step on a line redrawn in place, then the finished steps.
  ASSERT_TRUE(absl::StrContains(
      cli.Run({"plan", "approve", suite.staging_plan()}).out, "approved"));
  ASSERT_EQ(cli.Run({"app", "wait", "web", "--env", "staging"}).exit_code, 0);
  suite.CommitFiles({{"apps/web/worker.yaml",
                      "apiVersion: ferry.dev/v1\nkind: Process\nmetadata:\n  name: web-worker\nspec:\n"
                      "  command: [\"/bin/sleep\", \"300\"]\n"
                      "  healthCheck:\n    exec: {command: [\"/bin/true\"]}\n    initialDelaySeconds: 3\n"
                      "    periodSeconds: 0.2\n"}},
                    "a worker that takes 3 s to become healthy");
  tmux.Start("sync", ferry + " app sync web --env staging --approve --wait");
  // The line redrawn in place while the worker's apply waits for its health.
  screen = tmux.WaitFor("sync", "Apply Process/web-worker");
  EXPECT_TRUE(absl::StrContains(screen, "steps done")) << "no progress line:\n" << screen;
  screen = tmux.WaitFor("sync", "exit=0");
  EXPECT_TRUE(absl::StrContains(screen, "Succeeded\x1b[39m: dep-")) << "not green:\n" << screen;
  EXPECT_TRUE(absl::StrContains(screen, "Process/web-worker")) << screen;
  EXPECT_FALSE(absl::StrContains(screen, "steps done")) << "the progress line stays on screen:\n" << screen;

  // Ctrl-C while waiting for an approval: stops waiting (exit 130), the
  // plan stays pending.
  tmux.Start("wait", ferry + " app sync web --env prod --wait");
  screen = tmux.WaitFor("wait", "Ctrl-C stops waiting");
  tmux.Keys("wait", "C-c");
  screen = tmux.WaitFor("wait", "exit=130");
  EXPECT_TRUE(absl::StrContains(screen, "stopped waiting; plan plan-")) << screen;
  CliResult plans = cli.Run({"plan", "list", "--app", "web", "--env", "prod", "--state", "pending", "-o", "json"});
  EXPECT_TRUE(absl::StrContains(plans.out, "PLAN_STATE_PENDING")) << plans.out;

  // audit tail -f shows what happens as it happens; Ctrl-C ends it (exit 0).
  tmux.Start("tail", ferry + " audit tail -f -n 1 --env prod");
  tmux.WaitFor("tail", "TIME");
  // The plan `sync --wait` made (it superseded the seeded one).
  absl::StatusOr<nlohmann::json> first = ParseJson(plans.out.substr(0, plans.out.find('\n')));
  ASSERT_TRUE(first.ok()) << plans.out;
  const std::string plan = (*first)["id"].get<std::string>();
  CliResult rejected = cli.Run({"plan", "reject", plan, "--comment", "not now"});
  ASSERT_EQ(rejected.exit_code, 0) << rejected.err;
  screen = tmux.WaitFor("tail", "PLAN_REJECTED");
  tmux.Keys("tail", "C-c");
  screen = tmux.WaitFor("tail", "exit=0");
}

}  // namespace
}  // namespace ferry::testing
