// The ferry command: what a person (or a script) types to drive Ferry.
// Parses the command line, then runs the one action it chose; docs/cli.md.

#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/cli_state.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"
#include "common/concurrency/last_resort.h"

int main(int argc, char** argv) {
  using namespace ferry::cli;
  Interrupts::Get().Install();
  CliState state;
  CLI::App app{"ferry: drive Ferry, the GitOps control plane, from a terminal or a script."};
  app.name("ferry");
  app.require_subcommand(1);
  app.fallthrough();
  app.set_version_flag("--version", "ferry 0.1.0");
  app.footer(
      "\nStart with `ferry status`. `make up` configures ferry for the local suite; elsewhere run `ferry login`.\n"
      "Every command takes --help. Exit codes: 0 ok, 1 failed, 2 usage, 3 waited and it failed or rolled back,\n"
      "4 waited and timed out, 130 interrupted. docs/cli.md has the whole reference.");
  GlobalFlags& f = state.flags;
  app.add_option("-o,--output", f.output, "Output format: table, wide, json (one object a line), yaml")
      ->capture_default_str();
  app.add_option("--color", f.color, "Colour: auto (a terminal without NO_COLOR), always, never")
      ->capture_default_str();
  app.add_option("--context", f.overrides.context, "Context of the configuration file to use ($FERRY_CONTEXT)");
  app.add_option("--server", f.overrides.server,
                 "Where Ferry answers: HOST:PORT, or SERVICE=HOST:PORT,... ($FERRY_SERVER)");
  app.add_option("--ca-file", f.overrides.ca_file, "CA certificate to trust ($FERRY_CACERT)");
  app.add_option("--token-file", f.overrides.token_file, "File holding the API token ($FERRY_TOKEN gives the token)");
  app.add_flag("--insecure", f.overrides.insecure, "Plaintext, for suites run with FERRY_INSECURE=1");
  app.add_option("--config", f.config_path, "Configuration file ($FERRY_CONFIG; default ~/.config/ferry/config.yaml)");
  app.add_option("--request-timeout", f.request_timeout, "Deadline of each call")->capture_default_str();

  AddStatusCommand(app, state);
  AddAppCommands(app, state);
  AddPlanCommands(app, state);
  AddRepoCommands(app, state);
  AddPrCommands(app, state);
  AddEnvCommands(app, state);
  AddConfigCommands(app, state);
  AddAuditCommands(app, state);
  AddHistoryCommands(app, state);
  AddContextCommands(app, state);
  AddTokenCommands(app, state);
  AddNotifyCommands(app, state);
  AddCompletionCommand(app, state);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  absl::Status status = state.Prepare();
  // The last-resort catch: a surprise becomes an INTERNAL error, never a crash.
  if (status.ok() && state.action) status = ferry::concurrency::RunGuarded("ferry", [&] { return state.action(); });
  if (!status.ok()) std::fprintf(stderr, "ferry: %s\n", std::string(status.message()).c_str());
  std::fflush(stdout);
  return ExitCodeOf(status);
}
