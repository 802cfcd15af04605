#include "services/deployer/host/process_manager.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/json/json.h"
#include "common/logging/logger.h"
#include "common/process/run_process.h"
#include "common/status/status_macros.h"
#include "services/deployer/host/health_probe.h"
#include "services/deployer/host/safe_path.h"
#include "services/deployer/host/startup_probe_schedule.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The fields of an instance record (written by Save) into `inst`.
absl::Status ReadInstanceRecord(const json& j, Instance& inst) {
  ASSIGN_OR_RETURN(inst.id, JsonField<std::string>(j, "id", ""));
  ASSIGN_OR_RETURN(inst.identity.pid, JsonField<int>(j, "pid", 0));
  ASSIGN_OR_RETURN(inst.identity.start_time, JsonField<uint64_t>(j, "start_time", 0));
  ASSIGN_OR_RETURN(inst.spec_hash, JsonField<std::string>(j, "spec_hash", ""));
  ASSIGN_OR_RETURN(inst.log_path, JsonField<std::string>(j, "log_path", ""));
  ASSIGN_OR_RETURN(inst.ports, (JsonField<std::map<std::string, int>>(j, "ports", {})));
  ASSIGN_OR_RETURN(inst.spec, JsonField<json>(j, "spec", json::object()));
  return absl::OkStatus();
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `path` whole or not at all. Each call writes a temporary file of
// its own: a reader that records a found pid (Load) may write the same
// record while the deployer does.
absl::Status WriteFileAtomic(const std::string& path, const std::string& data) {
  static std::atomic<uint64_t> writes{0};
  std::string tmp = absl::StrCat(path, ".", getpid(), "-", ++writes, ".tmp");
  {
    // 0600: a record is the deployer's own state (what it signals and
    // trusts), readable by no other user.
    int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return absl::InternalError(absl::StrCat("create ", tmp, ": ", strerror(errno)));
    size_t off = 0;
    bool ok = fchmod(fd, 0600) == 0;
    while (ok && off < data.size()) {
      ssize_t n = write(fd, data.data() + off, data.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ok = false;
        break;
      }
      off += static_cast<size_t>(n);
    }
    if (close(fd) != 0) ok = false;
    if (!ok) {
      std::error_code ec;
      fs::remove(tmp, ec);
      return absl::InternalError(absl::StrCat("write ", tmp));
    }
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::error_code ec;
    fs::remove(tmp, ec);
    return absl::InternalError(absl::StrCat("rename ", tmp, " to ", path, ": ", strerror(err)));
  }
  return absl::OkStatus();
}

json RecordJson(const Instance& inst, int stop_signal, int64_t stop_timeout_ms) {
  return json{{"id", inst.id},
              {"pid", inst.identity.pid},
              {"start_time", inst.identity.start_time},
              {"spec_hash", inst.spec_hash},
              {"ports", inst.ports},
              {"log_path", inst.log_path},
              {"stop_signal", stop_signal},
              {"stop_timeout_ms", stop_timeout_ms},
              {"spec", inst.spec}};
}

// Finds a process started for `marker` whose pid was never recorded (the
// deployer died between starting it and writing its pid file).
ProcessIdentity FindByMarker(const std::string& marker) {
  std::string needle = "FERRY_INSTANCE=" + marker;
  DIR* d = opendir("/proc");
  if (d == nullptr) return {};
  ProcessIdentity found;
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::string env = ReadFile(absl::StrCat("/proc/", pid, "/environ"));
    size_t pos = env.find(needle);
    if (pos != std::string::npos && (pos == 0 || env[pos - 1] == '\0') &&
        (pos + needle.size() == env.size() || env[pos + needle.size()] == '\0')) {
      found = {pid, ProcessStartTime(pid)};
      break;
    }
  }
  closedir(d);
  return found;
}

std::string Tail(const std::string& path, size_t n) {
  std::string s = ReadFile(path);
  if (s.size() > n) s = s.substr(s.size() - n);
  return s;
}

int ResolvePort(const Instance& inst, const std::string& port) {
  int num = 0;
  if (absl::SimpleAtoi(port, &num)) return num;
  auto it = inst.ports.find(port);
  return it == inst.ports.end() ? 0 : it->second;
}

}  // namespace

ProcessManager::ProcessManager(std::string root, WorkloadIdentity who) : root_(std::move(root)), who_(std::move(who)) {}

std::string ProcessManager::InstanceHash(const json& spec) const {
  if (!who_.uid.has_value()) return ProcessSpecHash(spec);
  // Who an instance runs as is part of what it runs: a changed runAs
  // replaces the instances and shows as drift until then.
  json with_identity = spec;
  with_identity["ferry.dev/runAs"] = IdentityKey(who_);
  return ProcessSpecHash(with_identity);
}

std::string ProcessManager::Dir(const std::string& app, const std::string& name) const {
  return absl::StrCat(root_, "/.ferry/run/", app, "/", name);
}

ferry::Mutex& ProcessManager::LockFor(const std::string& app, const std::string& name) {
  ferry::MutexLock l(&mu_);
  auto& m = locks_[app + "/" + name];
  if (!m) m = std::make_unique<ferry::Mutex>();
  return *m;
}

std::vector<Instance> ProcessManager::Load(const std::string& app, const std::string& name) {
  std::vector<Instance> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(Dir(app, name), ec)) {
    if (entry.path().extension() != ".json") continue;
    absl::StatusOr<json> parsed = ParseJson(ReadFile(entry.path()));
    if (!parsed.ok() || !parsed->is_object()) continue;
    json& j = *parsed;
    Instance inst;
    inst.file = entry.path();
    absl::Status read = ReadInstanceRecord(j, inst);
    if (!read.ok()) {
      // A record edited or corrupted on disk is skipped, never a crash.
      logging::Warn("instance record unreadable", {{"file", inst.file}, {"error", std::string(read.message())}});
      continue;
    }
    if (inst.identity.pid == 0) {
      // Started but never recorded: find it by the marker in its environment.
      inst.identity = FindByMarker(inst.file);
      if (inst.identity.pid != 0) {
        j["pid"] = inst.identity.pid;
        j["start_time"] = inst.identity.start_time;
        if (absl::StatusOr<std::string> text = DumpJson(j); text.ok()) (void)WriteFileAtomic(inst.file, *text);
      }
    }
    out.push_back(std::move(inst));
  }
  std::sort(out.begin(), out.end(), [](const Instance& a, const Instance& b) { return a.id < b.id; });
  return out;
}

std::vector<Instance> ProcessManager::LiveInstances(const std::string& app, const std::string& name) {
  std::vector<Instance> out;
  for (Instance& inst : Load(app, name)) {
    if (IsAlive(inst.identity)) out.push_back(std::move(inst));
  }
  return out;
}

absl::StatusOr<Instance> ProcessManager::Start(const std::string& app, const HostObject& obj, const std::string& hash) {
  const ProcessSpec& spec = *obj.process;
  Instance inst;
  {
    ferry::MutexLock l(&mu_);
    inst.id = absl::StrCat(absl::ToUnixMillis(absl::Now()), "-", ++counter_);
  }
  inst.spec_hash = hash;
  inst.spec = obj.doc["spec"];
  std::string dir = Dir(app, obj.name);
  std::string log_dir = absl::StrCat(root_, "/logs/", app, "/", obj.name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::create_directories(log_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("create ", log_dir, ": ", ec.message()));
  inst.file = absl::StrCat(dir, "/", inst.id, ".json");
  inst.log_path = absl::StrCat(log_dir, "/", inst.id, ".log");

  std::map<std::string, std::string> env = {{"PATH", process::kDefaultCommandPath},
                                            {"LANG", "C.UTF-8"},
                                            {"HOME", root_}};
  for (const auto& [k, v] : spec.env) env[k] = v;
  for (size_t i = 0; i < spec.ports.size(); ++i) {
    int port = spec.ports[i].port != 0 ? spec.ports[i].port : PickFreePort();
    if (port == 0) return absl::UnavailableError("no free port to assign");
    inst.ports[spec.ports[i].name] = port;
    env[absl::StrCat("PORT_", absl::AsciiStrToUpper(spec.ports[i].name))] = absl::StrCat(port);
    if (i == 0) env["PORT"] = absl::StrCat(port);
  }
  env["FERRY_INSTANCE"] = inst.file;
  env["FERRY_APPLICATION"] = app;
  env["FERRY_PROCESS"] = obj.name;
  // $(NAME) in command and args expands to the environment value, as in
  // Kubernetes.
  std::vector<std::pair<std::string, std::string>> repl;
  // Secret values are not expanded: argv is readable by every user in
  // /proc/<pid>/cmdline; a secret reaches the program through its
  // environment only.
  for (const auto& [k, v] : env) {
    if (!spec.secret_env.count(k)) repl.emplace_back(absl::StrCat("$(", k, ")"), v);
  }
  SpawnSpec ss;
  for (const std::string& a : spec.argv) ss.argv.push_back(absl::StrReplaceAll(a, repl));
  ss.env = env;
  ss.log_path = inst.log_path;
  ss.workdir = root_;
  if (!spec.working_dir.empty() && spec.working_dir != ".") {
    absl::StatusOr<std::string> wd = ResolveUnderRoot(root_, spec.working_dir, "spec.workingDir", false);
    if (!wd.ok()) return wd.status();
    ss.workdir = *wd;
  }
  int64_t stop_ms = absl::ToInt64Milliseconds(spec.stop_timeout);
  // Intent first: if the deployer dies before the pid is recorded, Load()
  // finds the program through FERRY_INSTANCE.
  absl::StatusOr<std::string> record = DumpJson(RecordJson(inst, spec.stop_signal, stop_ms));
  if (!record.ok()) return record.status();
  absl::Status w = WriteFileAtomic(inst.file, *record);
  if (!w.ok()) return w;
  absl::StatusOr<pid_t> pid = SpawnDetached(ss, who_);
  if (!pid.ok()) {
    fs::remove(inst.file, ec);
    return pid.status();
  }
  inst.identity = {*pid, ProcessStartTime(*pid)};
  record = DumpJson(RecordJson(inst, spec.stop_signal, stop_ms));
  if (!record.ok()) return record.status();
  w = WriteFileAtomic(inst.file, *record);
  if (!w.ok()) return w;
  return inst;
}

std::pair<bool, std::string> ProcessManager::Probe(const Instance& inst, const ProcessSpec& spec) {
  const HealthCheckSpec& h = spec.health;
  ProbeResult r;
  switch (h.kind) {
    case ProbeKind::kNone:
      r = {true, "running"};
      break;
    case ProbeKind::kHttp:
      r = ProbeHttp(ResolvePort(inst, h.port), h.path, h.expected_status, h.timeout);
      break;
    case ProbeKind::kTcp:
      r = ProbeTcp(ResolvePort(inst, h.port), h.timeout);
      break;
    case ProbeKind::kExec:
      r = ProbeExec(h.command, h.timeout, root_, who_);
      break;
  }
  return {r.ok, absl::StrCat("instance ", inst.id, " (pid ", inst.identity.pid, "): ", r.message)};
}

absl::Status ProcessManager::WaitHealthy(const Instance& inst, const ProcessSpec& spec, absl::Time deadline,
                                         const std::atomic<bool>* cancel, int* probes) {
  auto cancelled = [&] { return cancel != nullptr && cancel->load(); };
  absl::Time first = absl::Now() + spec.health.initial_delay;
  while (absl::Now() < first && absl::Now() < deadline && !cancelled()) {
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(std::min(absl::Milliseconds(20), first - absl::Now())));
  }
  std::string last = "no health check ran";
  // Until the first pass, a failed probe is retried sooner than the period
  // (StartupProbeDelay: a quarter of the time waited so far, 2 ms at first,
  // settling to the period): a program that is up in a few milliseconds is
  // seen healthy then, not a whole period later.
  const absl::Time waiting_since = absl::Now();
  while (true) {
    if (cancelled()) return absl::AbortedError("cancelled while waiting for health");
    if (!IsAlive(inst.identity)) {
      return absl::FailedPreconditionError(absl::StrCat("instance ", inst.id, " exited; log tail: ",
                                                        Tail(inst.log_path, 400)));
    }
    auto [ok, msg] = Probe(inst, spec);
    ++*probes;
    if (ok) return absl::OkStatus();
    last = msg;
    absl::Duration wait = StartupProbeDelay(absl::Now() - waiting_since, spec.health.period);
    if (absl::Now() + wait > deadline) break;
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(wait));
  }
  return absl::DeadlineExceededError(absl::StrCat("not healthy before the health timeout: ", last));
}

void ProcessManager::Stop(const Instance& inst) {
  absl::StatusOr<json> parsed = ParseJson(ReadFile(inst.file));
  const json j = parsed.ok() ? *std::move(parsed) : json();
  int sig = 15;
  int64_t ms = 10000;
  if (j.is_object()) {
    sig = JsonField<int>(j, "stop_signal", 15).value_or(15);
    ms = JsonField<int64_t>(j, "stop_timeout_ms", 10000).value_or(10000);
  }
  StopProcess(inst.identity, sig, absl::Milliseconds(ms));
  std::error_code ec;
  fs::remove(inst.file, ec);
  ferry::MutexLock l(&mu_);
  failures_.erase(inst.file);
}

absl::Status ProcessManager::Apply(const std::string& app, const HostObject& obj, absl::Time deadline,
                                   const std::atomic<bool>* cancel) {
  ferry::MutexLock lock(&LockFor(app, obj.name));
  const ProcessSpec& spec = *obj.process;
  std::string hash = InstanceHash(obj.doc["spec"]);
  std::vector<Instance> keep, old;
  std::error_code ec;
  for (Instance& inst : Load(app, obj.name)) {
    if (!IsAlive(inst.identity)) {
      fs::remove(inst.file, ec);  // Dead: forget it.
      continue;
    }
    if (inst.spec_hash == hash && static_cast<int>(keep.size()) < spec.replicas) {
      keep.push_back(std::move(inst));
    } else {
      old.push_back(std::move(inst));
    }
  }
  // Old instances running another spec go first; surplus ones last.
  for (int i = static_cast<int>(keep.size()); i < spec.replicas; ++i) {
    absl::Time t0 = absl::Now();
    absl::StatusOr<Instance> fresh = Start(app, obj, hash);
    if (!fresh.ok()) return fresh.status();
    absl::Time spawned = absl::Now();
    int probes = 0;
    absl::Status healthy = WaitHealthy(*fresh, spec, deadline, cancel, &probes);
    if (!healthy.ok()) {
      Stop(*fresh);
      return absl::Status(healthy.code(), absl::StrCat("Process \"", obj.name, "\": ", healthy.message()));
    }
    absl::Time ready = absl::Now();
    std::string replaced;
    if (!old.empty()) {
      replaced = old.front().id;
      Stop(old.front());
      old.erase(old.begin());
    }
    auto ms = [](absl::Duration d) { return absl::ToDoubleMilliseconds(d); };
    logging::Info(replaced.empty() ? "process started" : "process replaced",
                  {{"application", app},
                   {"process", obj.name},
                   {"instance", fresh->id},
                   {"pid", fresh->identity.pid},
                   {"old_instance", replaced},
                   {"spawn_ms", ms(spawned - t0)},
                   {"healthy_after_ms", ms(ready - spawned)},
                   {"probes", probes},
                   {"stop_old_ms", ms(absl::Now() - ready)}});
  }
  for (const Instance& inst : old) Stop(inst);
  return absl::OkStatus();
}

absl::Status ProcessManager::Delete(const std::string& app, const std::string& name) {
  ferry::MutexLock lock(&LockFor(app, name));
  for (const Instance& inst : Load(app, name)) Stop(inst);
  std::error_code ec;
  fs::remove_all(Dir(app, name), ec);
  return absl::OkStatus();
}

absl::Status ProcessManager::Signal(const std::string& app, const std::string& name, int signal) {
  int sent = 0;
  for (const Instance& inst : LiveInstances(app, name)) {
    if (SignalGroup(inst.identity, signal)) ++sent;
  }
  if (sent == 0) return absl::NotFoundError(absl::StrCat("Process \"", name, "\" has no running instance to signal"));
  return absl::OkStatus();
}

void ProcessManager::CapLog(const Instance& inst, int64_t max_bytes) {
  std::error_code ec;
  auto size = fs::file_size(inst.log_path, ec);
  if (ec || static_cast<int64_t>(size) <= max_bytes) return;
  // copytruncate: the program keeps its O_APPEND descriptor and writes on at
  // the new end of the file.
  fs::copy_file(inst.log_path, inst.log_path + ".1", fs::copy_options::overwrite_existing, ec);
  truncate(inst.log_path.c_str(), 0);
}

std::pair<v1::HealthStatus, std::string> ProcessManager::Health(const std::string& app, const HostObject& applied) {
  const ProcessSpec& spec = *applied.process;
  std::string hash = InstanceHash(applied.doc["spec"]);
  std::vector<Instance> matching;
  for (Instance& inst : LiveInstances(app, applied.name)) {
    CapLog(inst, spec.log_max_bytes);
    if (inst.spec_hash == hash) matching.push_back(std::move(inst));
  }
  if (static_cast<int>(matching.size()) < spec.replicas) {
    return {v1::HEALTH_STATUS_DEGRADED,
            absl::StrCat(matching.size(), " of ", spec.replicas, " instances of Process \"", applied.name, "\" running")};
  }
  v1::HealthStatus worst = v1::HEALTH_STATUS_HEALTHY;
  std::vector<std::string> messages;
  for (const Instance& inst : matching) {
    auto [ok, msg] = Probe(inst, spec);
    ferry::MutexLock l(&mu_);
    int& failures = failures_[inst.file];
    if (ok) {
      failures = 0;
      continue;
    }
    ++failures;
    messages.push_back(msg);
    if (failures >= spec.health.failure_threshold) {
      worst = v1::HEALTH_STATUS_DEGRADED;
    } else if (worst == v1::HEALTH_STATUS_HEALTHY) {
      worst = v1::HEALTH_STATUS_PROGRESSING;
    }
  }
  if (messages.empty()) {
    return {worst, absl::StrCat(matching.size(), " of ", spec.replicas, " instances healthy")};
  }
  return {worst, absl::StrJoin(messages, "; ")};
}

ObservedObject ProcessManager::Observe(const std::string& app, const std::string& name, const HostObject* applied) {
  ObservedObject out;
  std::vector<Instance> all = Load(app, name);
  std::vector<const Instance*> alive;
  std::vector<const Instance*> dead;
  for (const Instance& inst : all) (IsAlive(inst.identity) ? alive : dead).push_back(&inst);
  json status = json::array();
  for (const Instance* inst : alive) {
    status.push_back({{"id", inst->id}, {"pid", inst->identity.pid}, {"ports", inst->ports}, {"specHash", inst->spec_hash}});
  }
  if (!alive.empty()) {
    out.exists = true;
    json live = {{"apiVersion", kApiVersion},
                 {"kind", kProcessKind},
                 {"metadata", {{"name", name}}},
                 {"spec", alive.front()->spec},
                 {"status", {{"instances", status}}}};
    out.live_json = DumpJsonLossy(live);  // ids, numbers and a spec read by ParseJson: valid UTF-8
  }
  if (applied == nullptr) {
    out.health = out.exists ? v1::HEALTH_STATUS_UNKNOWN : v1::HEALTH_STATUS_MISSING;
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    return out;
  }
  const ProcessSpec& spec = *applied->process;
  std::string hash = InstanceHash(applied->doc["spec"]);
  int matching = 0;
  bool foreign = false;
  for (const Instance* inst : alive) {
    if (inst->spec_hash == hash) {
      ++matching;
    } else {
      foreign = true;
    }
  }
  if (spec.replicas > 0 && alive.empty()) {
    out.drift = v1::DRIFT_STATUS_MISSING;
    out.drift_message = dead.empty() ? "no instance is running"
                                     : absl::StrCat("no instance is running (pid ", dead.front()->identity.pid,
                                                    " of instance ", dead.front()->id, " is gone)");
    out.health = v1::HEALTH_STATUS_MISSING;
    out.health_message = out.drift_message;
    out.repair_by_policy = spec.restart_always;
    return out;
  }
  if (foreign) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = "an instance runs a spec other than the one applied";
  } else if (matching != spec.replicas || !dead.empty()) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    std::string gone = dead.empty() ? "" : absl::StrCat(" (pid ", dead.front()->identity.pid, " of instance ",
                                                        dead.front()->id, " is gone)");
    out.drift_message = absl::StrCat(matching, " of ", spec.replicas, " instances running", gone);
    out.repair_by_policy = spec.restart_always;
  } else {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
  }
  auto [health, msg] = Health(app, *applied);
  out.health = health;
  out.health_message = msg;
  return out;
}

}  // namespace ferry::deployer::host
