#include "services/deployer/host/host_target.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/crypto/sha256.h"
#include "common/json/json.h"
#include "common/logging/logger.h"
#include "services/deployer/host/safe_path.h"
#include "services/deployer/host/host_command.h"
#include "services/deployer/host/secret_values.h"

namespace ferry::deployer::host {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

absl::Status Prefix(const std::string& where, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

std::string Dirname(const std::string& p) {
  size_t slash = p.rfind('/');
  return slash == std::string::npos ? "" : p.substr(0, slash);
}

absl::StatusOr<HostObject> Parse(const TargetObject& o) { return ParseHostObject(o.json, o.source_path); }

std::string ShortOutput(const std::string& s) {
  std::string out = s.size() > 500 ? s.substr(s.size() - 500) : s;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

std::string ReadFd(int fd) {
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Ferry's own state under a root: pid records (.ferry/run/...) and program
// output (logs/...). A ConfigFile may write neither, or it could forge the
// pid records the deployer signals and trusts.
absl::Status CheckNotFerryState(const std::string& root, const std::string& abs, const std::string& path) {
  // `abs` is a real path (resolved, or a descriptor's): when `root` is its
  // prefix, `root` is real too and needs no realpath (its lstat of every
  // component ran for each drift check of each file; issue #23).
  std::string rel;
  if (absl::StartsWith(abs, root + "/")) {
    rel = abs.substr(root.size() + 1);
  } else {
    char buf[PATH_MAX];
    std::string real_root = realpath(root.c_str(), buf) != nullptr ? std::string(buf) : root;
    if (!absl::StartsWith(abs, real_root + "/")) {
      return absl::InvalidArgumentError(absl::StrCat("spec.path: \"", path, "\" resolves outside the root"));
    }
    rel = abs.substr(real_root.size() + 1);
  }
  while (absl::StartsWith(rel, "./")) rel = rel.substr(2);
  for (const char* area : {".ferry", "logs"}) {
    if (rel == area || absl::StartsWith(rel, absl::StrCat(area, "/"))) {
      return absl::InvalidArgumentError(absl::StrCat("spec.path: \"", path, "\" resolves into ", area,
                                                     "/, Ferry's own state under the root (pid records and logs)"));
    }
  }
  return absl::OkStatus();
}

// A command's output as it may be quoted in a message: a secret file's
// content redacted (a validate command may print the file).
std::string Quotable(const ConfigFileSpec& spec, const std::string& output) {
  return spec.secret ? RedactSecret(output, spec.content) : output;
}

absl::Status ModeRefusal(int mode) {
  return absl::InvalidArgumentError(absl::StrFormat(
      "spec.mode: %04o sets setuid, setgid or sticky bits, which the host target refuses (at most 0777) unless the "
      "environment sets host.allowSpecialModes",
      mode));
}

// Splits a relative path into its directory ("" for the root) and its name.
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

HostTarget::HostTarget(std::string root_dir, WorkloadIdentity who, bool allow_special_modes,
                       const secrets::SecretResolver* secrets)
    : root_(std::move(root_dir)),
      who_(std::move(who)),
      allow_special_modes_(allow_special_modes),
      secrets_(secrets),
      processes_(root_, who_) {}

absl::Status HostTarget::CheckMode(int mode) const {
  if ((mode & ~0777) != 0 && !allow_special_modes_) return ModeRefusal(mode);
  return absl::OkStatus();
}

namespace {

// Application ids name folders under the root, so they must be plain labels.
// ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$, matched by hand (no std::regex on
// input: it recursed per character and overflowed the stack on long input).
bool DnsLabel(const std::string& s) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  for (char c : s)
    if (!alnum(c) && c != '-') return false;
  return true;
}

absl::Status CheckScope(const AppScope& app) {
  if (!DnsLabel(app.application_id)) {
    const std::string& id = app.application_id;
    return absl::InvalidArgumentError(absl::StrCat("application_id: \"", id.size() > 80 ? id.substr(0, 80) + "..." : id,
                                                   "\" is not a lowercase DNS label of at most 63 bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<TargetObject>> HostTarget::Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                             const FileFetcher& fetch) {
  absl::Status scope = CheckScope(app);
  if (!scope.ok()) return scope;
  std::map<std::string, std::string> paths;  // ConfigFile path -> where it was declared.
  std::set<std::string> process_names;
  std::vector<HostObject> parsed;
  for (TargetObject& o : objects) {
    absl::StatusOr<HostObject> obj = Parse(o);
    if (!obj.ok()) return obj.status();
    if (obj->kind == kProcessKind) process_names.insert(obj->name);
    parsed.push_back(std::move(*obj));
  }
  for (size_t i = 0; i < objects.size(); ++i) {
    HostObject& obj = parsed[i];
    if (obj.file) {
      absl::StatusOr<std::string> abs = ResolveUnderRoot(root_, obj.file->path, "spec.path", false);
      if (!abs.ok()) return Prefix(obj.where, abs.status());
      absl::Status state = CheckNotFerryState(root_, *abs, obj.file->path);
      if (!state.ok()) return Prefix(obj.where, state);
      if (absl::Status mode = CheckMode(obj.file->mode); !mode.ok()) return Prefix(obj.where, mode);
      auto [it, inserted] = paths.emplace(*abs, obj.where);
      if (!inserted) return absl::InvalidArgumentError(absl::StrCat(obj.where, ": spec.path: \"", obj.file->path,
                                                                     "\" is also written by ", it->second));
      if (!obj.file->content_from.empty()) {
        const std::string& f = obj.file->content_from;
        if (f[0] == '/' || f == ".." || absl::StrContains(f, "../") || absl::StartsWith(f, "..")) {
          return absl::InvalidArgumentError(
              absl::StrCat(obj.where, ": spec.contentFrom.file: \"", f, "\" must stay inside the application folder"));
        }
        if (!fetch) {
          return absl::InvalidArgumentError(
              absl::StrCat(obj.where, ": spec.contentFrom.file: no source to read \"", f, "\" from"));
        }
        absl::StatusOr<std::string> content = fetch(objects[i].source_path, f);
        if (!content.ok()) return Prefix(absl::StrCat(obj.where, ": spec.contentFrom.file"), content.status());
        SetFileContent(obj.doc["spec"], *content);  // binary content as contentBase64
      }
      if (obj.file->reload && !obj.file->reload->process.empty() && !process_names.count(obj.file->reload->process)) {
        return absl::InvalidArgumentError(absl::StrCat(obj.where, ": spec.reload.process: no Process \"",
                                                       obj.file->reload->process, "\" in this application"));
      }
    } else if (!obj.process->working_dir.empty() && obj.process->working_dir != ".") {
      absl::StatusOr<std::string> wd = ResolveUnderRoot(root_, obj.process->working_dir, "spec.workingDir", false);
      if (!wd.ok()) return Prefix(obj.where, wd.status());
    }
    if (HasSecretValues(obj)) {
      absl::Status s = PrepareSecretValues(obj, secrets_, fetch, objects[i].source_path);
      if (!s.ok()) return s;
    }
    objects[i].json = DumpJsonLossy(obj.doc);
  }
  return objects;
}

absl::Status HostTarget::ApplyFile(const AppScope& app, const HostObject& obj) {
  const ConfigFileSpec& spec = *obj.file;
  // Prepare replaces contentFrom.file with the file's bytes (after checking
  // the path): one still here was never prepared, and writing it would
  // write an empty file the plan did not ask for.
  if (!spec.content_from.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        obj.where, ": spec.contentFrom.file: \"", spec.content_from,
        "\" was never resolved (the deployment was not prepared before it ran); nothing written"));
  }
  std::error_code ec;
  fs::create_directories(root_, ec);
  // The string check first (clear errors), then every write through
  // descriptors opened beneath the root, so nothing swapped in between the
  // check and the write (a directory turned symlink) can move the write.
  absl::StatusOr<std::string> abs = ResolveUnderRoot(root_, spec.path, "spec.path", false);
  if (!abs.ok()) return Prefix(obj.where, abs.status());
  absl::Status state = CheckNotFerryState(root_, *abs, spec.path);
  if (!state.ok()) return Prefix(obj.where, state);
  if (absl::Status mode = CheckMode(spec.mode); !mode.ok()) return Prefix(obj.where, mode);
  std::string rel_dir = Dirname(spec.path);
  std::string base = spec.path.substr(rel_dir.empty() ? 0 : rel_dir.size() + 1);
  std::string dir;
  absl::StatusOr<int> dir_fd = OpenDirBeneath(root_, rel_dir, "spec.path", true, &dir);
  if (!dir_fd.ok()) return Prefix(obj.where, dir_fd.status());
  FdCloser dir_closer{*dir_fd};
  // The directory the descriptor really is (symlinks inside the root
  // followed) must not be Ferry's own state either.
  state = CheckNotFerryState(root_, absl::StrCat(dir, "/", base), spec.path);
  if (!state.ok()) return Prefix(obj.where, state);
  const std::string& content = spec.content;  // the exact bytes (contentBase64 decoded)
  // Unchanged content and mode: nothing to write, nothing to reload.
  {
    int cfd = openat(*dir_fd, base.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (cfd >= 0) {
      FdCloser c{cfd};
      struct stat st;
      if (fstat(cfd, &st) == 0 && S_ISREG(st.st_mode) && static_cast<int>(st.st_mode & 07777) == spec.mode &&
          static_cast<size_t>(st.st_size) == content.size() && ReadFd(cfd) == content) {
        return absl::OkStatus();
      }
    }
  }
  std::string tmp_name;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp_name = absl::StrFormat(".%s.ferry-%d-%d-%d", base, getpid(), ++stage_counter_, attempt);
    fd = openat(*dir_fd, tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  std::string staged = absl::StrCat(dir, "/", tmp_name);
  if (fd < 0) return absl::InternalError(absl::StrCat(obj.where, ": cannot stage ", staged, ": ", strerror(errno)));
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      unlinkat(*dir_fd, tmp_name.c_str(), 0);
      return absl::InternalError(absl::StrCat(obj.where, ": write ", staged, ": ", strerror(err)));
    }
    off += n;
  }
  if ((spec.mode & ~0777) != 0 && who_.uid.has_value()) {
    // Allowed special bits: the file belongs to the workload's user, so a
    // setuid bit grants that user, never the deployer's (root).
    if (fchown(fd, *who_.uid, who_.gid) != 0) {
      int err = errno;
      close(fd);
      unlinkat(*dir_fd, tmp_name.c_str(), 0);
      return absl::InternalError(absl::StrCat(obj.where, ": chown ", staged, ": ", strerror(err)));
    }
  }
  fchmod(fd, static_cast<mode_t>(spec.mode & (allow_special_modes_ ? 07777 : 0777)));
  fsync(fd);
  close(fd);
  if (!spec.validate.empty()) {
    std::vector<std::string> argv;
    for (const std::string& a : spec.validate) argv.push_back(absl::StrReplaceAll(a, {{"{path}", staged}}));
    absl::StatusOr<process::ProcessResult> r =
        process::RunProcess(argv, HostCommandOptions(spec.validate_timeout, root_, who_));
    if (!r.ok() || !r->succeeded()) {
      unlinkat(*dir_fd, tmp_name.c_str(), 0);
      std::string why = !r.ok()         ? std::string(r.status().message())
                        : r->timed_out ? "timed out"
                                       : absl::StrCat(DescribeEnd(*r), ": ", ShortOutput(Quotable(spec, r->stdout_text)));
      return absl::FailedPreconditionError(
          absl::StrCat(obj.where, ": validate command refused the file; it did not go live: ", why));
    }
  }
  if (renameat(*dir_fd, tmp_name.c_str(), *dir_fd, base.c_str()) != 0) {
    int err = errno;
    unlinkat(*dir_fd, tmp_name.c_str(), 0);
    return absl::InternalError(absl::StrCat(obj.where, ": rename into ", dir, "/", base, ": ", strerror(err)));
  }
  fsync(*dir_fd);
  if (spec.reload) {
    const ReloadAction& r = *spec.reload;
    if (!r.command.empty()) {
      absl::StatusOr<process::ProcessResult> out = process::RunProcess(r.command, HostCommandOptions(r.timeout, root_, who_));
      if (!out.ok()) return Prefix(obj.where + ": reload command", out.status());
      if (!out->succeeded()) {
        return absl::FailedPreconditionError(
            absl::StrCat(obj.where, ": reload command ", DescribeEnd(*out), ": ", ShortOutput(Quotable(spec, out->stdout_text))));
      }
    } else {
      absl::Status s = processes_.Signal(app.application_id, r.process, r.signal);
      // A Process not running yet (same wave, first deploy) reads the file at start.
      if (!s.ok() && s.code() != absl::StatusCode::kNotFound) return Prefix(obj.where + ": reload", s);
    }
  }
  return absl::OkStatus();
}

absl::Status HostTarget::Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                               absl::Time deadline, const std::atomic<bool>* cancel) {
  absl::StatusOr<HostObject> obj = Parse(desired);
  if (!obj.ok()) return obj.status();
  if (HasSecretValues(*obj)) {
    absl::Status s = ResolveSecretValues(*obj, secrets_);
    if (!s.ok()) return s;
  }
  if (obj->file) {
    // A ConfigFile that moved: remove the old path once the new one is live.
    absl::Status s = ApplyFile(app, *obj);
    if (!s.ok()) return s;
    if (previous != nullptr) {
      absl::StatusOr<HostObject> prev = Parse(*previous);
      if (prev.ok() && prev->file && prev->file->path != obj->file->path) {
        // The new file is live: failing to remove the old one (e.g. its
        // directory now leads out of the root) is logged, not a failure.
        absl::Status removed = RemoveFile(prev->where, prev->file->path);
        if (!removed.ok()) logging::Warn("old ConfigFile path not removed", {{"error", std::string(removed.message())}});
      }
    }
    return absl::OkStatus();
  }
  std::error_code ec;
  fs::create_directories(root_, ec);
  return processes_.Apply(app.application_id, *obj, deadline, cancel);
}

absl::Status HostTarget::Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) {
  absl::StatusOr<HostObject> obj = Parse(applied);
  if (!obj.ok()) return obj.status();
  if (obj->process) return processes_.Delete(app.application_id, obj->name);
  return RemoveFile(obj->where, obj->file->path);
}

absl::Status HostTarget::RemoveFile(const std::string& where, const std::string& path) {
  // The string check for a clear error, then the unlink through the
  // directory's descriptor opened beneath the root: a directory swapped for
  // a symlink since the plan (or since the check) cannot move the delete.
  absl::StatusOr<std::string> abs = ResolveUnderRoot(root_, path, "spec.path", false);
  if (!abs.ok()) return Prefix(where, abs.status());
  auto [rel_dir, base] = SplitPath(path);
  std::string dir;
  absl::StatusOr<int> dir_fd = OpenDirBeneath(root_, rel_dir, "spec.path", false, &dir);
  if (!dir_fd.ok()) {
    if (dir_fd.status().code() == absl::StatusCode::kNotFound) return absl::OkStatus();  // Already gone.
    return Prefix(where, dir_fd.status());
  }
  FdCloser closer{*dir_fd};
  absl::Status state = CheckNotFerryState(root_, absl::StrCat(dir, "/", base), path);
  if (!state.ok()) return Prefix(where, state);
  struct stat st;
  if (fstatat(*dir_fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::InternalError(absl::StrCat(where, ": stat ", dir, "/", base, ": ", strerror(errno)));
  }
  if (S_ISDIR(st.st_mode)) return absl::OkStatus();  // Not ours to remove.
  if (unlinkat(*dir_fd, base.c_str(), 0) != 0 && errno != ENOENT) {
    return absl::InternalError(absl::StrCat(where, ": unlink ", dir, "/", base, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

ObservedObject HostTarget::ObserveFile(const HostObject* applied, const std::string& name, bool live_wanted) {
  ObservedObject out;
  if (applied == nullptr) {
    out.health = v1::HEALTH_STATUS_MISSING;  // Without a spec there is no path to look at.
    return out;
  }
  const ConfigFileSpec& spec = *applied->file;
  auto unknown = [&out](const absl::Status& why) {
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.health = v1::HEALTH_STATUS_UNKNOWN;
    out.health_message = std::string(why.message());
    return out;
  };
  auto missing = [&out, &spec](const std::string& why) {
    out.drift = v1::DRIFT_STATUS_MISSING;
    out.drift_message = absl::StrCat(spec.path, " ", why);
    out.health = v1::HEALTH_STATUS_MISSING;
    out.health_message = out.drift_message;
    return out;
  };
  // The applied path's string is checked; where it leads is found by
  // descriptors opened beneath the root (no walk of the path as a string
  // first, which cost as much again for each file of each drift check):
  // what is observed is what a write would replace.
  if (absl::Status lexical = CheckRelativePath(spec.path, "spec.path"); !lexical.ok()) return unknown(lexical);
  auto [rel_dir, base] = SplitPath(spec.path);
  std::string dir;
  absl::StatusOr<int> dir_fd = OpenDirBeneath(root_, rel_dir, "spec.path", false, &dir);
  if (!dir_fd.ok()) {
    if (dir_fd.status().code() == absl::StatusCode::kNotFound) return missing("does not exist");
    return unknown(dir_fd.status());
  }
  FdCloser dir_closer{*dir_fd};
  // Never Ferry's own state (pid records hold specs), whatever directory was
  // swapped in since the apply.
  absl::Status state = CheckNotFerryState(root_, absl::StrCat(dir, "/", base), spec.path);
  if (!state.ok()) return unknown(state);
  int fd = openat(*dir_fd, base.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return missing("does not exist");
    if (errno == ELOOP) return missing("is a symlink, not the file applied");
    return unknown(absl::InternalError(absl::StrCat(spec.path, ": ", strerror(errno))));
  }
  FdCloser file_closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) return unknown(absl::InternalError(absl::StrCat(spec.path, ": ", strerror(errno))));
  if (!S_ISREG(st.st_mode)) return missing("is not a regular file");
  std::string content = ReadFd(fd);
  int mode = static_cast<int>(st.st_mode & 07777);
  out.exists = true;
  if (spec.secret || live_wanted) {
    json live = {{"apiVersion", kApiVersion},
                 {"kind", kConfigFileKind},
                 {"metadata", {{"name", name}}},
                 {"spec", {{"path", spec.path}, {"mode", absl::StrFormat("%04o", mode)}}}};
    if (spec.secret) {
      // A secret's content is shown as its keyed digest, never as bytes.
      ObserveSecretFile(spec, content, live, out);
      return out;
    }
    SetFileContent(live["spec"], content);  // bytes that are not UTF-8 as contentBase64
    out.live_json = DumpJsonLossy(live);
  }
  const std::string& want = spec.content;
  if (content != want) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = absl::StrCat(spec.path, ": content differs (sha256 ", Sha256Hex(content).substr(0, 12),
                                     ", applied ", Sha256Hex(want).substr(0, 12), ")");
  } else if (mode != spec.mode) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = absl::StrFormat("%s: mode %04o, applied %04o", spec.path, mode, spec.mode);
  } else {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
  }
  out.health = v1::HEALTH_STATUS_HEALTHY;
  out.health_message = "file present";
  return out;
}

void HostTarget::ObserveSecretFile(const ConfigFileSpec& spec, const std::string& content, json& live,
                                   ObservedObject& out) {
  absl::StatusOr<std::string> digest =
      secrets_ != nullptr ? secrets_->Digest(content)
                          : absl::FailedPreconditionError("the deployer has no secrets key (--secrets-key-file)");
  secrets::SecretRef seen = *spec.secret;
  seen.value_digest = digest.ok() ? *digest : "";
  live["spec"]["contentFrom"] = {{"secretRef", secrets::SecretRefJson(seen)}};
  out.live_json = DumpJsonLossy(live);
  out.health = v1::HEALTH_STATUS_HEALTHY;
  out.health_message = "file present";
  int mode = 0;
  if (auto m = live["spec"].find("mode"); m != live["spec"].end()) mode = std::stoi(m->get<std::string>(), nullptr, 8);
  if (!digest.ok()) {
    out.drift = v1::DRIFT_STATUS_UNKNOWN;
    out.drift_message = absl::StrCat(spec.path, ": ", digest.status().message());
  } else if (*digest != spec.secret->value_digest) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = absl::StrCat(spec.path, ": secret changed: content differs from the secret applied (digest ",
                                     digest->substr(0, 24), "..., applied ", spec.secret->value_digest.substr(0, 24),
                                     "...)");
  } else if (mode != spec.mode) {
    out.drift = v1::DRIFT_STATUS_MODIFIED;
    out.drift_message = absl::StrFormat("%s: mode %04o, applied %04o", spec.path, mode, spec.mode);
  } else {
    out.drift = v1::DRIFT_STATUS_IN_SYNC;
  }
}

ObservedObject HostTarget::Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  return ObserveObject(app, key, applied, true);
}

ObservedObject HostTarget::ObserveStatus(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
  return ObserveObject(app, key, applied, false);
}

ObservedObject HostTarget::ObserveObject(const AppScope& app, const ObjectKey& key, const TargetObject* applied,
                                         bool live) {
  absl::Status scope = CheckScope(app);
  if (!scope.ok()) {
    ObservedObject out;
    out.health_message = std::string(scope.message());
    return out;
  }
  std::optional<HostObject> parsed;
  if (applied != nullptr) {
    absl::StatusOr<HostObject> obj = Parse(*applied);
    if (!obj.ok()) {
      ObservedObject out;
      out.health_message = std::string(obj.status().message());
      return out;
    }
    parsed = std::move(*obj);
  }
  if (key.kind == kProcessKind) {
    return processes_.Observe(app.application_id, key.name, parsed ? &*parsed : nullptr);
  }
  if (key.kind == kConfigFileKind) return ObserveFile(parsed ? &*parsed : nullptr, key.name, live);
  ObservedObject out;
  out.health_message = absl::StrCat("kind \"", key.kind, "\" is unknown to the host target");
  return out;
}

std::pair<v1::HealthStatus, std::string> HostTarget::Health(const AppScope& app, const TargetObject& applied) {
  absl::StatusOr<HostObject> obj = Parse(applied);
  if (!obj.ok()) return {v1::HEALTH_STATUS_UNKNOWN, std::string(obj.status().message())};
  if (obj->process) return processes_.Health(app.application_id, *obj);
  ObservedObject o = ObserveFile(&*obj, obj->name, false);
  if (o.drift == v1::DRIFT_STATUS_MODIFIED) return {v1::HEALTH_STATUS_DEGRADED, o.drift_message};
  return {o.health, o.health_message};
}

absl::StatusOr<Target*> HostTargetFactory::For(const v1::DeployTarget& target) {
  if (target.kind() != v1::TARGET_KIND_HOST || !target.has_host()) {
    return absl::InvalidArgumentError("target: only TARGET_KIND_HOST with a host configuration is supported");
  }
  absl::StatusOr<std::string> key = roots_.Check(target.host().root_dir());
  if (!key.ok()) return key.status();
  absl::StatusOr<WorkloadIdentity> who = workloads_.For(target.host());
  if (!who.ok()) return who.status();
  bool special = target.host().allow_special_modes();
  std::string id = absl::StrCat(*key, "\n", IdentityKey(*who), "\n", special ? "special" : "");
  ferry::MutexLock l(&mu_);
  auto& t = targets_[id];
  if (!t) t = std::make_unique<HostTarget>(*key, *who, special, secrets_);
  return t.get();
}

}  // namespace ferry::deployer::host
