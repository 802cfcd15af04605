// ferry login, ferry context list|use|show|set|rm, ferry whoami.

#include <termios.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/cli_state.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

std::string Absolute(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

std::string ReadSecretFromTerminal(const std::string& prompt) {
  std::fprintf(stderr, "%s", prompt.c_str());
  std::fflush(stderr);
  termios old{};
  bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  return std::string(absl::StripAsciiWhitespace(line));
}

std::string Servers(const ContextConfig& c) {
  std::vector<std::string> parts;
  if (!c.server.empty()) parts.push_back(c.server);
  for (const std::string& s : ServiceNames()) {
    auto it = c.addresses.find(s);
    if (it != c.addresses.end() && it->second != c.server) parts.push_back(s + "=" + it->second);
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, ",");
}

std::string Auth(const ContextConfig& c) {
  if (!c.token_file.empty()) return "token-file " + c.token_file;
  if (!c.token.empty()) return absl::StrCat("token ", c.token.substr(0, std::min<size_t>(c.token.size(), 18)), "…");
  return "none";
}

nlohmann::json ContextJson(const std::string& name, const ContextConfig& c, bool current) {
  nlohmann::json j = {{"name", name}, {"current", current}, {"server", c.server}, {"ca_file", c.ca_file},
                      {"token_file", c.token_file}, {"has_inline_token", !c.token.empty()}, {"insecure", c.insecure}};
  nlohmann::json addresses = nlohmann::json::object();
  for (const std::string& s : ServiceNames()) addresses[s] = c.AddressOf(s);
  j["addresses"] = addresses;
  return j;
}

struct LoginFlags {
  std::string server;
  std::string name;
  std::string ca_file;
  std::string token_file;
  bool token_stdin = false;
  bool insecure = false;
};

absl::Status Login(CliState& state, const LoginFlags& f) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  std::string name = !f.name.empty() ? f.name : !state.flags.overrides.context.empty() ? state.flags.overrides.context
                                                : !config->current().empty()           ? config->current()
                                                                                       : "default";
  ContextConfig c;
  if (const ContextConfig* existing = config->Find(name)) c = *existing;
  if (!f.server.empty()) RETURN_IF_ERROR(ApplyServerSpec(f.server, &c));
  if (c.server.empty() && c.addresses.empty()) {
    return UsageError("ferry login needs the server: `ferry login HOST:PORT` (the planner's address)");
  }
  std::string ca = !f.ca_file.empty() ? f.ca_file : state.flags.overrides.ca_file;
  if (!ca.empty()) c.ca_file = Absolute(ca);
  if (f.insecure) c.insecure = true;
  std::string token_file = !f.token_file.empty() ? f.token_file : state.flags.overrides.token_file;
  if (!token_file.empty()) {
    c.token_file = Absolute(token_file);
    c.token.clear();
  } else if (f.token_stdin) {
    std::string line;
    std::getline(std::cin, line);
    c.token = std::string(absl::StripAsciiWhitespace(line));
    c.token_file.clear();
  } else if (::isatty(STDIN_FILENO) == 1) {
    c.token = ReadSecretFromTerminal("API token (ferry_...): ");
    c.token_file.clear();
  } else if (c.token.empty() && c.token_file.empty()) {
    return UsageError("ferry login needs a token: --token-file FILE, or --token-stdin with the token on standard input");
  }
  // Check the credentials before keeping them.
  CliConfig probe = *config;
  probe.Set(name, c);
  Overrides o;
  o.context = name;
  ASSIGN_OR_RETURN(ResolvedContext resolved, Resolve(probe, o));
  Connection conn(resolved, absl::Seconds(15));
  v1::WhoAmIResponse who;
  FERRY_RPC(conn, "planner", "log in", conn.Access().WhoAmI(conn.Call().get(), v1::WhoAmIRequest(), &who));
  if (who.kind() == v1::PRINCIPAL_KIND_ANONYMOUS && !resolved.token.empty()) {
    return absl::FailedPreconditionError(
        "the server took the token as anonymous (is its access control off, FERRY_INSECURE?); not saved");
  }
  config->Set(name, c);
  config->set_current(name);
  RETURN_IF_ERROR(config->Save());
  state.out().Line(absl::StrCat("Logged in to ", c.AddressOf("planner"), " as ", who.subject(),
                                who.method().empty() ? "" : absl::StrCat(" (", who.method(), ")"), "; context \"",
                                name, "\" is current (", config->path(), ")"));
  return absl::OkStatus();
}

struct SetFlags {
  std::string name;
  std::string server;
  std::string ca_file;
  std::string token_file;
  bool insecure = false;
  bool use = false;
  bool if_none_current = false;
};

absl::Status SetContext(CliState& state, const SetFlags& f) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  ContextConfig c;
  if (const ContextConfig* existing = config->Find(f.name)) c = *existing;
  if (!f.server.empty()) RETURN_IF_ERROR(ApplyServerSpec(f.server, &c));
  if (!f.ca_file.empty()) c.ca_file = Absolute(f.ca_file);
  if (!f.token_file.empty()) {
    c.token_file = Absolute(f.token_file);
    c.token.clear();
  }
  c.insecure = f.insecure;
  config->Set(f.name, c);
  bool make_current = f.use || config->current().empty() || config->Find(config->current()) == nullptr;
  if (make_current) config->set_current(f.name);
  RETURN_IF_ERROR(config->Save());
  state.out().Line(absl::StrCat("context \"", f.name, "\" saved in ", config->path(),
                                make_current ? " (current)" : absl::StrCat(" (current stays \"", config->current(),
                                                                           "\": `ferry context use ", f.name, "`)")));
  return absl::OkStatus();
}

absl::Status ListContexts(CliState& state) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& [name, c] : config->contexts()) out.Emit(ContextJson(name, c, name == config->current()));
    return absl::OkStatus();
  }
  if (config->contexts().empty()) {
    out.Line(absl::StrCat("no contexts in ", config->path(), ": `make up` makes one for the local suite, ",
                          "`ferry login HOST:PORT` for another"));
    return absl::OkStatus();
  }
  Table t({{"CURRENT"}, {"NAME"}, {"SERVER"}, {"CA"}, {"AUTH"}});
  for (const auto& [name, c] : config->contexts()) {
    t.Add({name == config->current() ? "*" : "", name, Servers(c), c.insecure ? "insecure (plaintext)" : c.ca_file.empty() ? "system" : c.ca_file,
           Auth(c)});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

absl::Status UseContext(CliState& state, const std::string& name) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  if (config->Find(name) == nullptr) {
    return absl::NotFoundError(absl::StrCat("no context \"", name, "\" in ", config->path(), ": `ferry context list`"));
  }
  config->set_current(name);
  RETURN_IF_ERROR(config->Save());
  state.out().Line(absl::StrCat("current context: ", name));
  return absl::OkStatus();
}

absl::Status ShowContext(CliState& state, const std::string& name_arg) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  const ResolvedContext& r = conn->context();
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(ContextJson(r.name, r.config, r.name == config->current()));
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("context:      ", r.name.empty() ? "(none: flags and environment)" : r.name));
  out.Line(absl::StrCat("config:       ", config->path()));
  for (const std::string& s : ServiceNames()) out.Line(absl::StrFormat("%-13s %s", s + ":", r.config.AddressOf(s)));
  out.Line(absl::StrCat("tls:          ", r.config.insecure ? "off (plaintext)" : r.config.ca_file.empty() ? "on, system CAs" : "on, CA " + r.config.ca_file));
  out.Line(absl::StrCat("auth:         ", std::getenv("FERRY_TOKEN") != nullptr ? "token from $FERRY_TOKEN" : Auth(r.config)));
  (void)name_arg;
  return absl::OkStatus();
}

absl::Status RemoveContext(CliState& state, const std::string& name) {
  ASSIGN_OR_RETURN(CliConfig * config, state.Config());
  if (!config->Remove(name)) {
    return absl::NotFoundError(absl::StrCat("no context \"", name, "\" in ", config->path(), ": `ferry context list`"));
  }
  RETURN_IF_ERROR(config->Save());
  state.out().Line(absl::StrCat("context \"", name, "\" removed"));
  return absl::OkStatus();
}

absl::Status WhoAmI(CliState& state) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::WhoAmIResponse who;
  FERRY_RPC(*conn, "planner", "ask who you are", conn->Access().WhoAmI(conn->Call().get(), v1::WhoAmIRequest(), &who));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(who);
    return absl::OkStatus();
  }
  out.Line(absl::StrCat(who.subject(), who.method().empty() ? "" : absl::StrCat(" (", who.method(), ")"),
                        who.groups().empty() ? "" : absl::StrCat(" groups: ", absl::StrJoin(who.groups(), ", "))));
  return absl::OkStatus();
}

}  // namespace

void AddContextCommands(CLI::App& app, CliState& state) {
  auto login = std::make_shared<LoginFlags>();
  CLI::App* l = Leaf(app, state, "login", "Save a server, its CA and your API token as a context, after checking them",
                     "  ferry login 127.0.0.1:7002 --ca-file .ferry/tls/ca.pem --token-file .ferry/admin.token\n"
                     "  ferry login planner=ferry.example.com:443,audit=audit.example.com:443 --name prod --token-stdin <token.txt\n",
                     [&state, login] { return Login(state, *login); });
  l->add_option("server", login->server, "HOST:PORT of the planner (and every service), or SERVICE=HOST:PORT,...");
  l->add_option("--name", login->name, "Context name (default: the current one, else \"default\")");
  l->add_option("--ca", login->ca_file, "CA certificate to trust (same as the global --ca-file)");
  l->add_option("--token", login->token_file, "File holding the token (same as the global --token-file)");
  l->add_flag("--token-stdin", login->token_stdin, "Read the token from standard input (stored in the config, mode 0600)");
  l->add_flag("--plaintext", login->insecure, "No TLS (suites run with FERRY_INSECURE=1)");

  CLI::App* ctx = Group(app, "context", "List, switch and edit contexts (servers, CA, token)");
  Leaf(*ctx, state, "list", "List contexts; * marks the current one", "  ferry context list\n",
       [&state] { return ListContexts(state); });
  auto use_name = std::make_shared<std::string>();
  Leaf(*ctx, state, "use", "Make a context current", "  ferry context use local\n",
       [&state, use_name] { return UseContext(state, *use_name); })
      ->add_option("name", *use_name, "Context name")
      ->required();
  auto show_name = std::make_shared<std::string>();
  Leaf(*ctx, state, "show", "Show where ferry connects and how it authenticates (after flags and environment)",
       "  ferry context show\n  ferry --context prod context show\n", [&state, show_name] { return ShowContext(state, *show_name); });
  auto set = std::make_shared<SetFlags>();
  CLI::App* s = Leaf(*ctx, state, "set", "Create or change a context without contacting the server",
                     "  ferry context set local --server 127.0.0.1:7002 --ca .ferry/tls/ca.pem --token .ferry/admin.token --use\n",
                     [&state, set] { return SetContext(state, *set); });
  s->add_option("name", set->name, "Context name")->required();
  s->add_option("--server", set->server, "HOST:PORT, or SERVICE=HOST:PORT,...");
  s->add_option("--ca", set->ca_file, "CA certificate to trust");
  s->add_option("--token", set->token_file, "File holding the token");
  s->add_flag("--plaintext", set->insecure, "No TLS (FERRY_INSECURE suites)");
  s->add_flag("--use", set->use, "Make it the current context (it becomes current anyway when there is none)");
  auto rm_name = std::make_shared<std::string>();
  Leaf(*ctx, state, "rm", "Remove a context", "  ferry context rm old\n", [&state, rm_name] { return RemoveContext(state, *rm_name); })
      ->add_option("name", *rm_name, "Context name")
      ->required();

  Leaf(app, state, "whoami", "Show who the server takes you for", "  ferry whoami\n", [&state] { return WhoAmI(state); });
}

}  // namespace ferry::cli
