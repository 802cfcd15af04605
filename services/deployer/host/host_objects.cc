#include "services/deployer/host/host_objects.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "services/deployer/host/detached_process.h"

namespace ferry::deployer::host {
namespace {

using nlohmann::json;

class Checker {
 public:
  explicit Checker(std::string where) : where_(std::move(where)) {}
  const std::string& Where() const { return where_; }
  absl::Status Error(const std::string& field, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", field, ": ", what));
  }

  absl::StatusOr<std::string> String(const json& parent, const char* key, const std::string& field, bool required,
                                     std::string def = "") const {
    if (!parent.is_object() || !parent.contains(key) || parent[key].is_null()) {
      if (required) return Error(field, "is required");
      return def;
    }
    if (!parent[key].is_string()) return Error(field, "must be a string");
    return parent[key].get<std::string>();
  }

  absl::StatusOr<int64_t> Int(const json& parent, const char* key, const std::string& field, int64_t def, int64_t min,
                              int64_t max) const {
    if (!parent.is_object() || !parent.contains(key) || parent[key].is_null()) return def;
    const json& v = parent[key];
    int64_t out = 0;
    if (v.is_number_integer()) {
      out = v.get<int64_t>();
    } else if (v.is_string() && absl::SimpleAtoi(v.get<std::string>(), &out)) {
    } else {
      return Error(field, "must be an integer");
    }
    if (out < min || out > max) return Error(field, absl::StrCat("must be between ", min, " and ", max));
    return out;
  }

  absl::StatusOr<absl::Duration> Seconds(const json& parent, const char* key, const std::string& field,
                                         absl::Duration def) const {
    if (!parent.is_object() || !parent.contains(key) || parent[key].is_null()) return def;
    const json& v = parent[key];
    if (!v.is_number()) return Error(field, "must be a number of seconds");
    double s = v.get<double>();
    if (s < 0 || s > 86400) return Error(field, "must be between 0 and 86400 seconds");
    return absl::Seconds(s);
  }

  // A command: a list of strings, or a string run by /bin/sh -c.
  absl::StatusOr<Command> CommandOf(const json& v, const std::string& field) const {
    Command out;
    if (v.is_string()) {
      if (v.get<std::string>().empty()) return Error(field, "must not be empty");
      return Command{"/bin/sh", "-c", v.get<std::string>()};
    }
    if (!v.is_array() || v.empty()) return Error(field, "must be a non-empty list of strings or a string");
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string()) return Error(absl::StrCat(field, "[", i, "]"), "must be a string");
      out.push_back(v[i].get<std::string>());
    }
    return out;
  }

 private:
  std::string where_;
};

bool LowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// ^[a-z0-9]([-a-z0-9._]{0,251}[a-z0-9])?$, matched by hand: names come from
// Git and can be of any length (std::regex recursed per character and
// overflowed the stack on a long one).
bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  if (!LowerAlnum(s.front()) || !LowerAlnum(s.back())) return false;
  for (char c : s)
    if (!LowerAlnum(c) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

constexpr size_t kMaxPortNameLength = 63;

// ^[a-z][a-z0-9_]*$ with a length cap, matched by hand.
bool ValidPortName(const std::string& s) {
  if (s.empty() || s.size() > kMaxPortNameLength || !(s[0] >= 'a' && s[0] <= 'z')) return false;
  for (char c : s)
    if (!LowerAlnum(c) && c != '_') return false;
  return true;
}

// A name for a message: long ones cut.
std::string Shown(const std::string& s) { return s.size() > 80 ? absl::StrCat(s.substr(0, 80), "...") : s; }

absl::StatusOr<int> ParseMode(const Checker& c, const json& spec) {
  if (!spec.contains("mode") || spec["mode"].is_null()) return 0644;
  const json& m = spec["mode"];
  int mode = 0;
  if (m.is_string()) {
    const std::string& s = m.get<std::string>();
    if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos) {
      return c.Error("spec.mode", absl::StrCat("\"", s, "\" is not an octal mode such as \"0644\""));
    }
    mode = std::stoi(s, nullptr, 8);
  } else if (m.is_number_integer()) {
    // YAML 1.1 readers turn 0644 into 420; others keep the digits 644.
    int64_t v = m.get<int64_t>();
    std::string digits = absl::StrCat(v);
    if (v > 0777 && digits.find_first_not_of("01234567") == std::string::npos && digits.size() <= 4) {
      mode = std::stoi(digits, nullptr, 8);
    } else {
      mode = static_cast<int>(v);
    }
  } else {
    return c.Error("spec.mode", "must be an octal string such as \"0644\"");
  }
  if (mode < 0 || mode > 07777) return c.Error("spec.mode", "out of range");
  return mode;
}

absl::Status ParseConfigFile(const Checker& c, const json& spec, ConfigFileSpec& out) {
  absl::StatusOr<std::string> path = c.String(spec, "path", "spec.path", true);
  if (!path.ok()) return path.status();
  out.path = *path;
  bool has_content = spec.contains("content") && !spec["content"].is_null();
  bool has_base64 = spec.contains("contentBase64") && !spec["contentBase64"].is_null();
  bool has_from = spec.contains("contentFrom") && !spec["contentFrom"].is_null();
  if (int{has_content} + int{has_base64} + int{has_from} != 1)
    return c.Error("spec.content", "exactly one of content, contentBase64 and contentFrom is required");
  if (has_content) {
    if (!spec["content"].is_string()) return c.Error("spec.content", "must be a string");
    out.content = spec["content"].get<std::string>();
  } else if (has_base64) {
    // Binary content: carried as base64 in the (UTF-8) manifest, written byte for byte.
    if (!spec["contentBase64"].is_string()) return c.Error("spec.contentBase64", "must be a base64 string");
    if (!absl::Base64Unescape(spec["contentBase64"].get<std::string>(), &out.content))
      return c.Error("spec.contentBase64", "is not valid base64");
  } else {
    const json& from = spec["contentFrom"];
    bool has_secret = from.is_object() && from.contains("secretRef");
    if (has_secret) {
      if (from.size() != 1) return c.Error("spec.contentFrom", "set either file or secretRef");
      absl::StatusOr<secrets::SecretRef> ref = secrets::ParseSecretRef(from["secretRef"], "spec.contentFrom.secretRef");
      if (!ref.ok()) return absl::InvalidArgumentError(absl::StrCat(c.Where(), ": ", ref.status().message()));
      out.secret = *std::move(ref);
    } else {
      absl::StatusOr<std::string> file = c.String(from, "file", "spec.contentFrom.file", true);
      if (!file.ok()) return file.status();
      out.content_from = *file;
    }
  }
  absl::StatusOr<int> mode = ParseMode(c, spec);
  if (!mode.ok()) return mode.status();
  out.mode = *mode;
  if (spec.contains("validate") && !spec["validate"].is_null()) {
    const json& v = spec["validate"];
    if (!v.is_object() || !v.contains("command")) return c.Error("spec.validate.command", "is required");
    absl::StatusOr<Command> cmd = c.CommandOf(v["command"], "spec.validate.command");
    if (!cmd.ok()) return cmd.status();
    out.validate = *cmd;
    absl::StatusOr<absl::Duration> t = c.Seconds(v, "timeoutSeconds", "spec.validate.timeoutSeconds", absl::Seconds(30));
    if (!t.ok()) return t.status();
    out.validate_timeout = *t;
  }
  if (spec.contains("reload") && !spec["reload"].is_null()) {
    const json& r = spec["reload"];
    if (!r.is_object()) return c.Error("spec.reload", "must be an object");
    ReloadAction action;
    bool has_cmd = r.contains("command");
    bool has_signal = r.contains("signal") || r.contains("process");
    if (has_cmd == has_signal) return c.Error("spec.reload", "set either command, or signal and process");
    if (has_cmd) {
      absl::StatusOr<Command> cmd = c.CommandOf(r["command"], "spec.reload.command");
      if (!cmd.ok()) return cmd.status();
      action.command = *cmd;
    } else {
      absl::StatusOr<std::string> proc = c.String(r, "process", "spec.reload.process", true);
      if (!proc.ok()) return proc.status();
      action.process = *proc;
      absl::StatusOr<std::string> sig = c.String(r, "signal", "spec.reload.signal", false, "SIGHUP");
      if (!sig.ok()) return sig.status();
      absl::StatusOr<int> num = ParseSignal(*sig);
      if (!num.ok()) return c.Error("spec.reload.signal", std::string(num.status().message()));
      action.signal = *num;
    }
    absl::StatusOr<absl::Duration> t = c.Seconds(r, "timeoutSeconds", "spec.reload.timeoutSeconds", absl::Seconds(30));
    if (!t.ok()) return t.status();
    action.timeout = *t;
    out.reload = action;
  }
  return absl::OkStatus();
}

absl::Status ParseHealth(const Checker& c, const json& hc, const ProcessSpec& p, HealthCheckSpec& out) {
  int kinds = 0;
  auto port_of = [&](const json& o, const std::string& field) -> absl::StatusOr<std::string> {
    if (!o.contains("port")) return c.Error(field, "is required");
    std::string port = o["port"].is_number_integer() ? absl::StrCat(o["port"].get<int64_t>())
                       : o["port"].is_string()       ? o["port"].get<std::string>()
                                                     : "";
    int num = 0;
    if (absl::SimpleAtoi(port, &num)) {
      if (num < 1 || num > 65535) return c.Error(field, "must be between 1 and 65535");
      return port;
    }
    for (const PortSpec& ps : p.ports) {
      if (ps.name == port) return port;
    }
    return c.Error(field, absl::StrCat("\"", port, "\" is neither a port number nor the name of a spec.ports entry"));
  };
  if (hc.contains("http")) {
    ++kinds;
    out.kind = ProbeKind::kHttp;
    absl::StatusOr<std::string> port = port_of(hc["http"], "spec.healthCheck.http.port");
    if (!port.ok()) return port.status();
    out.port = *port;
    absl::StatusOr<std::string> path = c.String(hc["http"], "path", "spec.healthCheck.http.path", false, "/");
    if (!path.ok()) return path.status();
    if (path->empty() || (*path)[0] != '/' || path->find_first_of("\r\n ") != std::string::npos) {
      return c.Error("spec.healthCheck.http.path", "must start with / and contain no spaces");
    }
    out.path = *path;
    absl::StatusOr<int64_t> st = c.Int(hc["http"], "expectedStatus", "spec.healthCheck.http.expectedStatus", 200, 100, 599);
    if (!st.ok()) return st.status();
    out.expected_status = static_cast<int>(*st);
  }
  if (hc.contains("tcp")) {
    ++kinds;
    out.kind = ProbeKind::kTcp;
    absl::StatusOr<std::string> port = port_of(hc["tcp"], "spec.healthCheck.tcp.port");
    if (!port.ok()) return port.status();
    out.port = *port;
  }
  if (hc.contains("exec")) {
    ++kinds;
    out.kind = ProbeKind::kExec;
    if (!hc["exec"].is_object() || !hc["exec"].contains("command")) {
      return c.Error("spec.healthCheck.exec.command", "is required");
    }
    absl::StatusOr<Command> cmd = c.CommandOf(hc["exec"]["command"], "spec.healthCheck.exec.command");
    if (!cmd.ok()) return cmd.status();
    out.command = *cmd;
  }
  if (kinds != 1) return c.Error("spec.healthCheck", "set exactly one of http, tcp and exec");
  absl::StatusOr<absl::Duration> d = c.Seconds(hc, "initialDelaySeconds", "spec.healthCheck.initialDelaySeconds", absl::ZeroDuration());
  if (!d.ok()) return d.status();
  out.initial_delay = *d;
  d = c.Seconds(hc, "periodSeconds", "spec.healthCheck.periodSeconds", absl::Seconds(1));
  if (!d.ok()) return d.status();
  if (*d < absl::Milliseconds(50)) return c.Error("spec.healthCheck.periodSeconds", "must be at least 0.05");
  out.period = *d;
  d = c.Seconds(hc, "timeoutSeconds", "spec.healthCheck.timeoutSeconds", absl::Seconds(1));
  if (!d.ok()) return d.status();
  if (*d <= absl::ZeroDuration()) return c.Error("spec.healthCheck.timeoutSeconds", "must be positive");
  out.timeout = *d;
  absl::StatusOr<int64_t> th = c.Int(hc, "failureThreshold", "spec.healthCheck.failureThreshold", 3, 1, 1000);
  if (!th.ok()) return th.status();
  out.failure_threshold = static_cast<int>(*th);
  return absl::OkStatus();
}

absl::Status ParseProcess(const Checker& c, const json& spec, ProcessSpec& out) {
  if (!spec.contains("command")) return c.Error("spec.command", "is required");
  absl::StatusOr<Command> cmd = c.CommandOf(spec["command"], "spec.command");
  if (!cmd.ok()) return cmd.status();
  out.argv = *cmd;
  if (spec.contains("args") && !spec["args"].is_null()) {
    const json& a = spec["args"];
    if (!a.is_array()) return c.Error("spec.args", "must be a list of strings");
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_string()) return c.Error(absl::StrCat("spec.args[", i, "]"), "must be a string");
      out.argv.push_back(a[i].get<std::string>());
    }
  }
  if (spec.contains("env") && !spec["env"].is_null()) {
    const json& e = spec["env"];
    if (!e.is_array()) return c.Error("spec.env", "must be a list of {name, value}");
    for (size_t i = 0; i < e.size(); ++i) {
      std::string f = absl::StrCat("spec.env[", i, "]");
      absl::StatusOr<std::string> name = c.String(e[i], "name", f + ".name", true);
      if (!name.ok()) return name.status();
      if (name->empty() || name->find('=') != std::string::npos) return c.Error(f + ".name", "is not a valid name");
      if (e[i].contains("valueFrom") && !e[i]["valueFrom"].is_null()) {
        const json& from = e[i]["valueFrom"];
        if (e[i].contains("value") && !e[i]["value"].is_null()) return c.Error(f, "set either value or valueFrom");
        if (!from.is_object() || from.size() != 1 || !from.contains("secretRef")) {
          return c.Error(f + ".valueFrom", "must be {secretRef: {...}}");
        }
        absl::StatusOr<secrets::SecretRef> ref = secrets::ParseSecretRef(from["secretRef"], f + ".valueFrom.secretRef");
        if (!ref.ok()) return absl::InvalidArgumentError(absl::StrCat(c.Where(), ": ", ref.status().message()));
        if (out.env.count(*name) || out.secret_env.count(*name)) return c.Error(f + ".name", absl::StrCat("\"", *name, "\" is set twice"));
        out.secret_env[*name] = *std::move(ref);
        continue;
      }
      absl::StatusOr<std::string> value = c.String(e[i], "value", f + ".value", false);
      if (!value.ok()) return value.status();
      if (out.secret_env.count(*name)) return c.Error(f + ".name", absl::StrCat("\"", *name, "\" is set twice"));
      out.env[*name] = *value;
    }
  }
  absl::StatusOr<std::string> wd = c.String(spec, "workingDir", "spec.workingDir", false);
  if (!wd.ok()) return wd.status();
  out.working_dir = *wd;
  absl::StatusOr<int64_t> replicas = c.Int(spec, "replicas", "spec.replicas", 1, 0, 1000);
  if (!replicas.ok()) return replicas.status();
  out.replicas = static_cast<int>(*replicas);
  absl::StatusOr<std::string> policy = c.String(spec, "restartPolicy", "spec.restartPolicy", false, "Always");
  if (!policy.ok()) return policy.status();
  if (*policy != "Always" && *policy != "Never") return c.Error("spec.restartPolicy", "must be Always or Never");
  out.restart_always = *policy == "Always";
  if (spec.contains("ports") && !spec["ports"].is_null()) {
    const json& ports = spec["ports"];
    if (!ports.is_array()) return c.Error("spec.ports", "must be a list of {name, port}");
    for (size_t i = 0; i < ports.size(); ++i) {
      std::string f = absl::StrCat("spec.ports[", i, "]");
      PortSpec ps;
      absl::StatusOr<std::string> name = c.String(ports[i], "name", f + ".name", true);
      if (!name.ok()) return name.status();
      if (!ValidPortName(*name)) {
        return c.Error(f + ".name", absl::StrCat("\"", Shown(*name), "\" (", name->size(), " bytes) must match [a-z][a-z0-9_]* and be at most ",
                                                 kMaxPortNameLength, " bytes"));
      }
      ps.name = *name;
      absl::StatusOr<int64_t> port = c.Int(ports[i], "port", f + ".port", 0, 0, 65535);
      if (!port.ok()) return port.status();
      ps.port = static_cast<int>(*port);
      if (ps.port != 0 && out.replicas > 1) {
        return c.Error(f + ".port", "a fixed port cannot be shared by several replicas; omit it to have one assigned");
      }
      out.ports.push_back(ps);
    }
  }
  if (spec.contains("healthCheck") && !spec["healthCheck"].is_null()) {
    absl::Status s = ParseHealth(c, spec["healthCheck"], out, out.health);
    if (!s.ok()) return s;
  }
  absl::StatusOr<std::string> sig = c.String(spec, "stopSignal", "spec.stopSignal", false, "SIGTERM");
  if (!sig.ok()) return sig.status();
  absl::StatusOr<int> num = ParseSignal(*sig);
  if (!num.ok()) return c.Error("spec.stopSignal", std::string(num.status().message()));
  out.stop_signal = *num;
  absl::StatusOr<absl::Duration> st = c.Seconds(spec, "stopTimeoutSeconds", "spec.stopTimeoutSeconds", absl::Seconds(10));
  if (!st.ok()) return st.status();
  out.stop_timeout = *st;
  if (spec.contains("logs") && !spec["logs"].is_null()) {
    absl::StatusOr<int64_t> max = c.Int(spec["logs"], "maxBytes", "spec.logs.maxBytes", 10 * 1024 * 1024, 1024,
                                        int64_t{1} << 40);
    if (!max.ok()) return max.status();
    out.log_max_bytes = *max;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HostObject> ParseHostObject(const std::string& text, const std::string& source_path) {
  std::string file = source_path.empty() ? "<manifest>" : source_path;
  absl::StatusOr<json> parsed = ParseJson(text);
  if (!parsed.ok()) {
    // E.g. a string that is not UTF-8: manifests are text; binary file
    // content goes in spec.contentBase64 or spec.contentFrom.
    return absl::InvalidArgumentError(absl::StrCat(file, ": object is not valid JSON/UTF-8 (",
                                                   parsed.status().message(), ")"));
  }
  json doc = *std::move(parsed);
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": object is not a JSON/YAML mapping"));
  }
  HostObject out;
  out.kind = doc.value("kind", "");
  out.name = doc.contains("metadata") && doc["metadata"].is_object() && doc["metadata"].contains("name") &&
                     doc["metadata"]["name"].is_string()
                 ? doc["metadata"]["name"].get<std::string>()
                 : "";
  out.where = absl::StrFormat("%s: %s \"%s\"", file, out.kind.empty() ? "object" : Shown(out.kind), Shown(out.name));
  Checker c(out.where);
  std::string api = doc.contains("apiVersion") && doc["apiVersion"].is_string() ? doc["apiVersion"].get<std::string>() : "";
  if (api != kApiVersion) {
    return c.Error("apiVersion", absl::StrCat("\"", api, "\" is not supported by the host target (use ", kApiVersion, ")"));
  }
  if (out.kind != kProcessKind && out.kind != kConfigFileKind) {
    return c.Error("kind", absl::StrCat("unknown kind \"", out.kind, "\" for the host target (known: Process, ConfigFile)"));
  }
  if (!ValidName(out.name))
    return c.Error("metadata.name", absl::StrCat("must be a lowercase DNS-style name of at most 253 bytes (",
                                                 out.name.size(), " bytes)"));
  if (!doc.contains("spec") || !doc["spec"].is_object()) return c.Error("spec", "is required");
  const json& spec = doc["spec"];
  absl::Status s;
  if (out.kind == kConfigFileKind) {
    out.file.emplace();
    s = ParseConfigFile(c, spec, *out.file);
  } else {
    out.process.emplace();
    s = ParseProcess(c, spec, *out.process);
  }
  if (!s.ok()) return s;
  out.doc = std::move(doc);
  return out;
}

bool IsUtf8Text(const std::string& bytes) { return DumpJson(json(bytes)).ok(); }

void SetFileContent(nlohmann::json& spec, const std::string& bytes) {
  spec.erase("content");
  spec.erase("contentBase64");
  spec.erase("contentFrom");
  if (IsUtf8Text(bytes)) {
    spec["content"] = bytes;
  } else {
    spec["contentBase64"] = absl::Base64Escape(bytes);
  }
}

std::string ProcessSpecHash(const nlohmann::json& spec) {
  // nlohmann's object keys are sorted, so the compact dump is canonical. A
  // spec comes from ParseJson: its strings are valid UTF-8 and the lossy dump
  // writes them as they are.
  return Sha256Hex(DumpJsonLossy(spec)).substr(0, 16);
}

}  // namespace ferry::deployer::host
