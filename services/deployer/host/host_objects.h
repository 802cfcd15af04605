#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/deployer/secrets/secret_ref.h"

namespace ferry::deployer::host {

// The apiVersion and kinds the host target understands.
inline constexpr char kApiVersion[] = "ferry.dev/v1";
inline constexpr char kProcessKind[] = "Process";
inline constexpr char kConfigFileKind[] = "ConfigFile";

// A command given either as a list (run directly) or as a string (run by
// /bin/sh -c).
using Command = std::vector<std::string>;

// What to do after a ConfigFile goes live.
struct ReloadAction {
  Command command;       // Run this, or
  std::string process;   // signal this Process of the same application
  int signal = 0;        // with this signal.
  absl::Duration timeout = absl::Seconds(30);
};

// spec of a ConfigFile.
struct ConfigFileSpec {
  std::string path;     // Relative to the environment's root.
  std::string content;  // Resolved bytes (contentBase64 decoded; contentFrom resolved by Prepare).
  std::string content_from;  // spec.contentFrom.file before resolution.
  // spec.contentFrom.secretRef: the content is a secret, resolved only when
  // applied (host/secret_values.h); `content` stays empty in the record.
  std::optional<secrets::SecretRef> secret;
  int mode = 0644;
  Command validate;  // May contain "{path}", replaced by the staged file's path.
  absl::Duration validate_timeout = absl::Seconds(30);
  std::optional<ReloadAction> reload;
};

enum class ProbeKind { kNone, kHttp, kTcp, kExec };

struct HealthCheckSpec {
  ProbeKind kind = ProbeKind::kNone;
  std::string port;  // A port number or the name of a spec.ports entry.
  std::string path = "/";
  int expected_status = 200;
  Command command;
  absl::Duration initial_delay = absl::ZeroDuration();
  absl::Duration period = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(1);
  int failure_threshold = 3;
};

struct PortSpec {
  std::string name;
  int port = 0;  // 0: assigned by the deployer per instance.
};

// spec of a Process.
struct ProcessSpec {
  Command argv;  // command followed by args.
  std::map<std::string, std::string> env;
  // env entries given as valueFrom.secretRef, by name: their values are
  // resolved only when an instance starts (host/secret_values.h), into `env`.
  std::map<std::string, secrets::SecretRef> secret_env;
  std::string working_dir;  // Relative to the root; empty = the root.
  int replicas = 1;
  bool restart_always = true;  // restartPolicy: Always (default) or Never.
  std::vector<PortSpec> ports;
  HealthCheckSpec health;
  int stop_signal = 15;
  absl::Duration stop_timeout = absl::Seconds(10);
  int64_t log_max_bytes = 10 * 1024 * 1024;
};

// A parsed host object. `where` prefixes every error: `<file>: <Kind> "<name>"`.
struct HostObject {
  std::string kind;
  std::string name;
  std::string where;
  nlohmann::json doc;
  std::optional<ConfigFileSpec> file;
  std::optional<ProcessSpec> process;
};

// Parses and checks one object document. INVALID_ARGUMENT naming the file,
// object and field, including for any apiVersion other than ferry.dev/v1 and
// any kind other than Process and ConfigFile.
absl::StatusOr<HostObject> ParseHostObject(const std::string& json, const std::string& source_path);

// True when `bytes` is valid UTF-8 (can be a JSON string as it is).
bool IsUtf8Text(const std::string& bytes);

// Sets a ConfigFile spec's content to `bytes`: spec.content when they are
// UTF-8 text, spec.contentBase64 otherwise (binary: exact bytes, UTF-8 JSON).
void SetFileContent(nlohmann::json& spec, const std::string& bytes);

// Canonical hash of a Process spec document, identifying its instances.
std::string ProcessSpecHash(const nlohmann::json& spec);

}  // namespace ferry::deployer::host
