#include "tests/cli/cli_harness.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/process/run_process.h"
#include "re2/re2.h"
#include "tests/support/test_certs.h"

namespace ferry::testing {

std::string CliHarness::Binary() { return std::string(FERRY_TEST_BIN_DIR) + "/ferry"; }

CliHarness::CliHarness(SecureSuite& suite) : suite_(suite) {
  dir_ = suite.dir() + "/cli";
  std::filesystem::create_directories(dir_);
  config_path_ = dir_ + "/config.yaml";
  std::string servers = absl::StrCat("server=", suite.process("planner").grpc_target(),
                                     ",repo-watcher=", suite.process("repo-watcher").grpc_target(),
                                     ",deployer=", suite.process("deployer").grpc_target(),
                                     ",audit=", suite.process("audit").grpc_target());
  CliResult r = Run({"context", "set", "suite", "--server", servers, "--ca", TestCerts::Get().ca(), "--token",
                     suite.admin_token_path(), "--use"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

CliResult CliHarness::Run(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& stdin_data) {
  std::vector<std::string> argv = {Binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  process::ProcessOptions options;
  options.env = {"FERRY_CONFIG=" + config_path_, "HOME=" + dir_, "PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  // Variables in `env` replace the harness's own of the same name.
  for (const std::string& e : env) {
    std::string name = e.substr(0, e.find('=') + 1);
    options.env.erase(std::remove_if(options.env.begin(), options.env.end(),
                                     [&](const std::string& x) { return x.rfind(name, 0) == 0; }),
                      options.env.end());
    options.env.push_back(e);
  }
  options.timeout = absl::Seconds(180);
  options.stdin_data = stdin_data;
  absl::StatusOr<process::ProcessResult> p = process::RunProcess(argv, options);
  CliResult out;
  if (!p.ok()) {
    ADD_FAILURE() << "ferry did not run: " << p.status();
    return out;
  }
  out.exit_code = p->exit_code;
  out.out = p->stdout_text;
  out.err = p->stderr_text;
  return out;
}

std::string Normalize(const std::string& text, const std::string& dir) {
  std::string s = absl::StrReplaceAll(text, {{dir, "<dir>"}});
  RE2::GlobalReplace(&s, R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", "<time>");
  RE2::GlobalReplace(&s, R"(\b[0-9a-f]{40}\b)", "<sha>");
  RE2::GlobalReplace(&s, R"(\b[0-9a-f]{7}\b)", "<sha>");
  RE2::GlobalReplace(&s, R"(\bdep-[a-z0-9-]+)", "dep-N");
  RE2::GlobalReplace(&s, R"(\bplan-\d+)", "plan-N");
  RE2::GlobalReplace(&s, R"(/tmp/ferry-certs\.[A-Za-z0-9]+)", "<certs>");
  RE2::GlobalReplace(&s, R"(ferry_[0-9a-f]{12}…)", "ferry_<id>…");
  RE2::GlobalReplace(&s, R"(\b\d+(\.\d+)?[smhd]\b)", "<age>");
  RE2::GlobalReplace(&s, R"(\b\d+m\d\ds\b)", "<age>");
  RE2::GlobalReplace(&s, R"(token:[0-9a-f]{12})", "token:<id>");
  RE2::GlobalReplace(&s, R"(127\.0\.0\.1:\d+)", "127.0.0.1:<port>");
  RE2::GlobalReplace(&s, R"( {2,})", "  ");
  RE2::GlobalReplace(&s, R"( +\n)", "\n");
  return s;
}

void ExpectGolden(const std::string& name, const std::string& actual, const std::string& dir) {
  const std::string path = std::string(FERRY_TEST_SOURCE_DIR) + "/tests/cli/golden/" + name;
  const std::string normalized = Normalize(actual, dir);
  const char* update = std::getenv("FERRY_UPDATE_GOLDEN");
  if (update != nullptr && std::string(update) == "1") {
    std::ofstream(path, std::ios::trunc) << normalized;
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "no golden file " << path << " (run with FERRY_UPDATE_GOLDEN=1 to write it); output:\n" << normalized;
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(normalized, want.str()) << "golden " << path << " differs (FERRY_UPDATE_GOLDEN=1 rewrites it)";
}

}  // namespace ferry::testing
