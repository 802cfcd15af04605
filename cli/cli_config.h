#pragma once

// The ferry command's configuration file (~/.config/ferry/config.yaml, or
// $FERRY_CONFIG): named contexts, each saying where Ferry's services
// answer, which CA to trust and which token to send, and the current one.
//
//   current-context: local
//   contexts:
//     local:
//       server: 127.0.0.1:7002          # every service not named below
//       repo-watcher: 127.0.0.1:7001    # per-service addresses (optional)
//       planner: 127.0.0.1:7002
//       deployer: 127.0.0.1:7003
//       audit: 127.0.0.1:7004
//       notifier: 127.0.0.1:7005
//       ca-file: /path/to/ca.pem        # TLS trusting this CA (else the system's)
//       token-file: /path/to/token      # or token: ferry_... (the file is mode 0600)
//       insecure: false                 # plaintext, for FERRY_INSECURE suites only
//
// Saving rewrites the whole file atomically (a temporary file renamed over
// it), mode 0600, keeping every context it did not change.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::cli {

// The services the command calls, by the names contexts use.
const std::vector<std::string>& ServiceNames();

struct ContextConfig {
  std::string server;                            // default address of every service
  std::map<std::string, std::string> addresses;  // per service ("planner" -> "host:port")
  std::string ca_file;
  std::string token;       // inline token (ferry login --token-stdin)
  std::string token_file;  // or a file holding it
  bool insecure = false;

  // The address of `service`: its own entry, else `server`; "" when neither.
  std::string AddressOf(const std::string& service) const;
};

class CliConfig {
 public:
  // $FERRY_CONFIG, else $XDG_CONFIG_HOME/ferry/config.yaml, else
  // $HOME/.config/ferry/config.yaml.
  static std::string DefaultPath();

  // Reads `path`; a missing file is an empty configuration. INVALID_ARGUMENT
  // names the file and what is wrong with it.
  static absl::StatusOr<CliConfig> Load(const std::string& path);
  absl::Status Save() const;

  const std::string& path() const { return path_; }
  const std::string& current() const { return current_; }
  void set_current(const std::string& name) { current_ = name; }
  const std::map<std::string, ContextConfig>& contexts() const { return contexts_; }
  const ContextConfig* Find(const std::string& name) const;
  void Set(const std::string& name, const ContextConfig& context) { contexts_[name] = context; }
  bool Remove(const std::string& name);

 private:
  std::string path_;
  std::string current_;
  std::map<std::string, ContextConfig> contexts_;
};

// What a command connects with: a context after the command line and the
// environment had their say.
struct ResolvedContext {
  std::string name;  // "" when only flags or the environment gave the server
  ContextConfig config;
  std::string token;  // read from token / token-file / FERRY_TOKEN
};

struct Overrides {
  std::string context;  // --context, else $FERRY_CONTEXT
  std::string server;   // --server, else $FERRY_SERVER: "host:port" or "svc=host:port,..."
  std::string ca_file;  // --ca-file, else $FERRY_CACERT
  std::string token_file;  // --token-file; $FERRY_TOKEN gives the token itself
  bool insecure = false;   // --insecure
};

// Flags first, then the environment, then the context. FAILED_PRECONDITION
// with what to do when nothing says where Ferry is.
absl::StatusOr<ResolvedContext> Resolve(const CliConfig& config, const Overrides& overrides);

// "host:port" or "planner=host:port,deployer=host:port" into `context`
// (the first form sets `server` and clears per-service addresses).
absl::Status ApplyServerSpec(const std::string& spec, ContextConfig* context);

}  // namespace ferry::cli
