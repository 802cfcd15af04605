#pragma once

// Runs the real `ferry` binary against a SecureSuite (the four services
// with TLS and tokens, as `make up` runs them), with a configuration file of
// its own whose current context points at the suite as its admin.

#include <map>
#include <string>
#include <vector>

#include "tests/integration/secure_suite.h"

namespace ferry::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class CliHarness {
 public:
  // Writes the context "suite" (the suite's addresses, CA and admin token).
  explicit CliHarness(SecureSuite& suite);

  // ferry ARGS with FERRY_CONFIG set; `env` adds variables (FERRY_TOKEN=...).
  CliResult Run(const std::vector<std::string>& args, const std::vector<std::string>& env = {},
                const std::string& stdin_data = "");

  const std::string& config_path() const { return config_path_; }
  const std::string& dir() const { return dir_; }
  static std::string Binary();

 private:
  SecureSuite& suite_;
  std::string dir_;
  std::string config_path_;
};

// Output made comparable across runs: ages, times, shas, plan and
// deployment numbers and the suite's folder replaced by placeholders, runs of
// spaces (table alignment, which depends on those values) made one.
std::string Normalize(const std::string& text, const std::string& dir);

// Compares `actual` (normalised) with tests/cli/golden/<name>; with
// FERRY_UPDATE_GOLDEN=1 writes it instead.
void ExpectGolden(const std::string& name, const std::string& actual, const std::string& dir);

}  // namespace ferry::testing
