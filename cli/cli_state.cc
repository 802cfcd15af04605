#include "cli/cli_state.h"

#include "absl/strings/str_cat.h"
#include "cli/exit_codes.h"

namespace ferry::cli {

absl::Status CliState::Prepare() {
  absl::StatusOr<Format> format = ParseFormat(flags.output);
  if (!format.ok()) return UsageError(std::string(format.status().message()));
  if (flags.color != "auto" && flags.color != "always" && flags.color != "never") {
    return UsageError(absl::StrCat("--color ", flags.color, ": use auto, always or never"));
  }
  if (!absl::ParseDuration(flags.request_timeout, &timeout_) || timeout_ <= absl::ZeroDuration()) {
    return UsageError(absl::StrCat("--request-timeout ", flags.request_timeout, ": not a duration (e.g. 30s, 2m)"));
  }
  output_ = std::make_unique<Output>(*format, flags.color);
  now_ = absl::Now();
  return absl::OkStatus();
}

absl::StatusOr<CliConfig*> CliState::Config() {
  if (!config_) {
    absl::StatusOr<CliConfig> loaded =
        CliConfig::Load(flags.config_path.empty() ? CliConfig::DefaultPath() : flags.config_path);
    if (!loaded.ok()) return loaded.status();
    config_ = std::move(*loaded);
  }
  return &*config_;
}

absl::StatusOr<Connection*> CliState::Connect() {
  if (!connection_) {
    absl::StatusOr<CliConfig*> config = Config();
    if (!config.ok()) return config.status();
    absl::StatusOr<ResolvedContext> resolved = Resolve(**config, flags.overrides);
    if (!resolved.ok()) return resolved.status();
    connection_ = std::make_unique<Connection>(std::move(*resolved), timeout_);
  }
  return connection_.get();
}

CLI::App* Leaf(CLI::App& parent, CliState& state, const std::string& name, const std::string& description,
               const std::string& examples, std::function<absl::Status()> run) {
  CLI::App* sub = parent.add_subcommand(name, description);
  if (!examples.empty()) sub->footer("\nExamples:\n" + examples);
  sub->callback([&state, run = std::move(run)] { state.action = run; });
  return sub;
}

CLI::App* Group(CLI::App& parent, const std::string& name, const std::string& description) {
  CLI::App* sub = parent.add_subcommand(name, description);
  sub->require_subcommand(1);
  return sub;
}

}  // namespace ferry::cli
