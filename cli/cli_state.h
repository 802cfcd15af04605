#pragma once

// What every ferry command shares: the global flags, the output, the
// configuration file and a connection made on first use, and the action
// the parsed command line chose (run after parsing, so usage errors and
// run errors keep their own exit codes).

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/cli_config.h"
#include "cli/connection.h"
#include "cli/output.h"

namespace ferry::cli {

struct GlobalFlags {
  std::string output = "table";
  std::string color = "auto";
  std::string config_path;
  Overrides overrides;
  std::string request_timeout = "30s";
};

class CliState {
 public:
  GlobalFlags flags;
  std::function<absl::Status()> action;

  // Called once the command line parsed.
  absl::Status Prepare();

  const Output& out() const { return *output_; }
  // The configuration file (loaded on first use).
  absl::StatusOr<CliConfig*> Config();
  // The connection of the resolved context (made on first use).
  absl::StatusOr<Connection*> Connect();
  absl::Time now() const { return now_; }

 private:
  std::unique_ptr<Output> output_;
  std::optional<CliConfig> config_;
  std::unique_ptr<Connection> connection_;
  absl::Duration timeout_ = absl::Seconds(30);
  absl::Time now_;
};

// A subcommand whose callback makes `run` the state's action; `examples`
// (one per line) become the help's footer.
CLI::App* Leaf(CLI::App& parent, CliState& state, const std::string& name, const std::string& description,
               const std::string& examples, std::function<absl::Status()> run);
// A group of subcommands (requires one).
CLI::App* Group(CLI::App& parent, const std::string& name, const std::string& description);

void AddContextCommands(CLI::App& app, CliState& state);
void AddStatusCommand(CLI::App& app, CliState& state);
void AddAppCommands(CLI::App& app, CliState& state);
void AddPlanCommands(CLI::App& app, CliState& state);
void AddRepoCommands(CLI::App& app, CliState& state);
void AddPrCommands(CLI::App& app, CliState& state);
void AddEnvCommands(CLI::App& app, CliState& state);
void AddConfigCommands(CLI::App& app, CliState& state);
void AddAuditCommands(CLI::App& app, CliState& state);
void AddHistoryCommands(CLI::App& app, CliState& state);
void AddTokenCommands(CLI::App& app, CliState& state);
void AddNotifyCommands(CLI::App& app, CliState& state);
void AddCompletionCommand(CLI::App& app, CliState& state);

}  // namespace ferry::cli
