#include "cli/cli_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ferry::cli {
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? "" : v;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

bool IsService(const std::string& name) {
  for (const std::string& s : ServiceNames()) {
    if (s == name) return true;
  }
  return false;
}

}  // namespace

const std::vector<std::string>& ServiceNames() {
  static const std::vector<std::string> names = {"repo-watcher", "planner", "deployer", "audit", "notifier"};
  return names;
}

std::string ContextConfig::AddressOf(const std::string& service) const {
  auto it = addresses.find(service);
  if (it != addresses.end() && !it->second.empty()) return it->second;
  return server;
}

std::string CliConfig::DefaultPath() {
  if (std::string p = Env("FERRY_CONFIG"); !p.empty()) return p;
  if (std::string x = Env("XDG_CONFIG_HOME"); !x.empty()) return x + "/ferry/config.yaml";
  return Env("HOME") + "/.config/ferry/config.yaml";
}

absl::StatusOr<CliConfig> CliConfig::Load(const std::string& path) {
  CliConfig config;
  config.path_ = path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return config;
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  auto bad = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " (fix or delete the file; `ferry login` writes it)"));
  };
  try {
    YAML::Node root = YAML::Load(*text);
    if (!root || root.IsNull()) return config;
    if (!root.IsMap()) return bad("not a mapping");
    if (root["current-context"]) config.current_ = root["current-context"].as<std::string>();
    YAML::Node contexts = root["contexts"];
    if (contexts && !contexts.IsNull()) {
      if (!contexts.IsMap()) return bad("contexts: not a mapping of names to contexts");
      for (const auto& entry : contexts) {
        const std::string name = entry.first.as<std::string>();
        const YAML::Node& node = entry.second;
        if (!node.IsMap()) return bad(absl::StrCat("contexts.", name, ": not a mapping"));
        ContextConfig c;
        for (const auto& field : node) {
          const std::string key = field.first.as<std::string>();
          if (key == "server") {
            c.server = field.second.as<std::string>();
          } else if (IsService(key)) {
            c.addresses[key] = field.second.as<std::string>();
          } else if (key == "ca-file") {
            c.ca_file = field.second.as<std::string>();
          } else if (key == "token") {
            c.token = field.second.as<std::string>();
          } else if (key == "token-file") {
            c.token_file = field.second.as<std::string>();
          } else if (key == "insecure") {
            c.insecure = field.second.as<bool>();
          } else {
            return bad(absl::StrCat("contexts.", name, ": unknown field \"", key,
                                    "\" (known: server, repo-watcher, planner, deployer, audit, notifier, ca-file, token, "
                                    "token-file, insecure)"));
          }
        }
        config.contexts_[name] = std::move(c);
      }
    }
  } catch (const YAML::Exception& e) {
    return bad(e.what());
  }
  return config;
}

absl::Status CliConfig::Save() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  if (!current_.empty()) out << YAML::Key << "current-context" << YAML::Value << current_;
  out << YAML::Key << "contexts" << YAML::Value << YAML::BeginMap;
  for (const auto& [name, c] : contexts_) {
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    if (!c.server.empty()) out << YAML::Key << "server" << YAML::Value << c.server;
    for (const std::string& s : ServiceNames()) {
      auto it = c.addresses.find(s);
      if (it != c.addresses.end() && !it->second.empty()) out << YAML::Key << s << YAML::Value << it->second;
    }
    if (!c.ca_file.empty()) out << YAML::Key << "ca-file" << YAML::Value << c.ca_file;
    if (!c.token.empty()) out << YAML::Key << "token" << YAML::Value << c.token;
    if (!c.token_file.empty()) out << YAML::Key << "token-file" << YAML::Value << c.token_file;
    if (c.insecure) out << YAML::Key << "insecure" << YAML::Value << true;
    out << YAML::EndMap;
  }
  out << YAML::EndMap << YAML::EndMap;
  if (!out.good()) return absl::InternalError(absl::StrCat("cannot write the configuration: ", out.GetLastError()));

  std::filesystem::path target(path_);
  std::error_code ec;
  if (target.has_parent_path()) std::filesystem::create_directories(target.parent_path(), ec);
  if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot create ", target.parent_path().string(), ": ", ec.message()));
  std::string tmp = absl::StrCat(path_, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  std::string text = std::string(out.c_str()) + "\n";
  const char* p = text.data();
  size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      std::string err = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp, ": ", err));
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    return absl::FailedPreconditionError(absl::StrCat("cannot replace ", path_, ": ", err));
  }
  return absl::OkStatus();
}

const ContextConfig* CliConfig::Find(const std::string& name) const {
  auto it = contexts_.find(name);
  return it == contexts_.end() ? nullptr : &it->second;
}

bool CliConfig::Remove(const std::string& name) {
  if (contexts_.erase(name) == 0) return false;
  if (current_ == name) current_.clear();
  return true;
}

absl::Status ApplyServerSpec(const std::string& spec, ContextConfig* context) {
  if (spec.find('=') == std::string::npos) {
    context->server = spec;
    context->addresses.clear();
    return absl::OkStatus();
  }
  for (absl::string_view part : absl::StrSplit(spec, ',', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    std::string svc(absl::StripAsciiWhitespace(kv.first));
    if (svc == "server") {
      context->server = kv.second;
    } else if (IsService(svc)) {
      context->addresses[svc] = kv.second;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--server: unknown service \"", svc, "\" in \"", spec,
                                                     "\" (use HOST:PORT, or SERVICE=HOST:PORT,... with SERVICE one of "
                                                     "server, ", absl::StrJoin(ServiceNames(), ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ResolvedContext> Resolve(const CliConfig& config, const Overrides& overrides) {
  ResolvedContext out;
  std::string name = overrides.context.empty() ? Env("FERRY_CONTEXT") : overrides.context;
  if (name.empty()) name = config.current();
  if (!name.empty()) {
    const ContextConfig* c = config.Find(name);
    if (c == nullptr) {
      std::vector<std::string> names;
      for (const auto& [n, _] : config.contexts()) names.push_back(n);
      return absl::NotFoundError(absl::StrCat("no context \"", name, "\" in ", config.path(),
                                              names.empty() ? " (it has none)"
                                                            : absl::StrCat(" (it has ", absl::StrJoin(names, ", "), ")"),
                                              ": run `ferry context list`, or `ferry login` to make one"));
    }
    out.name = name;
    out.config = *c;
  }
  std::string server = overrides.server.empty() ? Env("FERRY_SERVER") : overrides.server;
  if (!server.empty()) {
    if (absl::Status s = ApplyServerSpec(server, &out.config); !s.ok()) return s;
  }
  std::string ca = overrides.ca_file.empty() ? Env("FERRY_CACERT") : overrides.ca_file;
  if (!ca.empty()) out.config.ca_file = ca;
  if (overrides.insecure) out.config.insecure = true;
  bool any = !out.config.server.empty();
  for (const auto& [_, a] : out.config.addresses) any = any || !a.empty();
  if (!any) {
    return absl::FailedPreconditionError(
        absl::StrCat("ferry does not know where Ferry runs: no current context in ", config.path(),
                     ". Run `make up` (it configures ferry for the local suite), or "
                     "`ferry login HOST:PORT --ca-file CA --token-file FILE`, or pass --server"));
  }
  // The token: FERRY_TOKEN, then --token-file, then the context.
  if (std::string t = Env("FERRY_TOKEN"); !t.empty()) {
    out.token = t;
  } else {
    std::string file = overrides.token_file.empty() ? out.config.token_file : overrides.token_file;
    if (!overrides.token_file.empty() || (out.config.token.empty() && !file.empty())) {
      absl::StatusOr<std::string> text = ReadFile(file);
      if (!text.ok()) {
        return absl::FailedPreconditionError(absl::StrCat("the token file ", file, " cannot be read (",
                                                          text.status().message(),
                                                          "): run `ferry login` again or fix token-file in ",
                                                          config.path()));
      }
      out.token = std::string(absl::StripAsciiWhitespace(*text));
    } else {
      out.token = out.config.token;
    }
  }
  return out;
}

}  // namespace ferry::cli
