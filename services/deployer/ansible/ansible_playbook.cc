#include "services/deployer/ansible/ansible_playbook.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/json/json.h"
#include "common/process/run_process.h"
#include "common/status/status_macros.h"

namespace ferry::deployer::ansible {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The scratch folder of one run, removed (with what the run left in it) on
// destruction.
class Workspace {
 public:
  static absl::StatusOr<Workspace> Make(const std::string& root) {
    std::string tmpl = root + "/ferry-ansible-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return absl::InternalError(absl::StrCat("cannot create a scratch folder under ", root, " (--ansible-scratch-dir)"));
    return Workspace(tmpl);
  }
  Workspace(Workspace&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~Workspace() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit Workspace(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// A relative path of the folder: no "..", ".", empty or absolute parts.
bool SafeRelative(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.size() > 1024) return false;
  for (absl::string_view part : absl::StrSplit(p, '/'))
    if (part.empty() || part == "." || part == "..") return false;
  return p.find('\0') == std::string::npos;
}

absl::Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", path));
    }
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FileContent(const json& value, const std::string& rel) {
  if (value.is_array()) {
    std::vector<std::string> lines;
    for (const json& l : value) {
      if (!l.is_string()) return absl::InvalidArgumentError(absl::StrCat("spec.files.", rel, ": lines must be strings"));
      lines.push_back(l.get<std::string>());
    }
    return absl::StrJoin(lines, "\n");
  }
  if (value.is_object() && value.contains("base64") && value["base64"].is_string()) {
    std::string out;
    if (!absl::Base64Unescape(value["base64"].get<std::string>(), &out))
      return absl::InvalidArgumentError(absl::StrCat("spec.files.", rel, ".base64: not base64"));
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat("spec.files.", rel, ": must be a list of lines or {base64: ...}"));
}

// Owns the folder tree for the run's user, when it runs as another uid.
absl::Status Chown(const std::string& root, const host::WorkloadIdentity& who) {
  if (!who.uid.has_value()) return absl::OkStatus();
  std::error_code ec;
  if (::lchown(root.c_str(), *who.uid, who.gid) != 0)
    return absl::InternalError(absl::StrCat("cannot give ", root, " to uid ", *who.uid));
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (::lchown(it->path().c_str(), *who.uid, who.gid) != 0)
      return absl::InternalError(absl::StrCat("cannot give ", it->path().string(), " to uid ", *who.uid));
  }
  if (ec) return absl::InternalError(absl::StrCat("cannot walk ", root, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    if (s.empty()) continue;
    text = absl::StrReplaceAll(text, {{s, "<secret>"}});
    // A multi-line secret (a key) may be shown line by line.
    for (absl::string_view line : absl::StrSplit(s, '\n')) {
      line = absl::StripAsciiWhitespace(line);
      if (line.size() >= 8) text = absl::StrReplaceAll(text, {{line, "<secret>"}});
    }
  }
  return text;
}

PlaybookRunner::PlaybookRunner(PlaybookOptions options, v1::AnsibleTargetConfig config, host::WorkloadIdentity who,
                               SecretLookup secrets)
    : options_(std::move(options)), config_(std::move(config)), who_(std::move(who)), secrets_(std::move(secrets)) {}

absl::Status PlaybookRunner::CheckSpec(const json& object) {
  if (!object.is_object() || object.value("apiVersion", json()) != "ansible.ferry.dev/v1" ||
      object.value("kind", json()) != "AnsiblePlaybook") {
    return absl::InvalidArgumentError(
        "the ansible target runs only apiVersion ansible.ferry.dev/v1, kind AnsiblePlaybook (render method ansible)");
  }
  auto spec = object.find("spec");
  if (spec == object.end() || !spec->is_object()) return absl::InvalidArgumentError("spec: is required");
  auto files = spec->find("files");
  if (files == spec->end() || !files->is_object()) return absl::InvalidArgumentError("spec.files: is required");
  for (const auto& [rel, value] : files->items()) {
    if (!SafeRelative(rel))
      return absl::InvalidArgumentError(absl::StrCat("spec.files: \"", rel, "\" is not a path inside the folder"));
    absl::StatusOr<std::string> content = FileContent(value, rel);
    if (!content.ok()) return content.status();
  }
  for (const char* key : {"playbook", "healthPlaybook"}) {
    auto p = spec->find(key);
    if (p == spec->end()) {
      if (std::string(key) == "playbook") return absl::InvalidArgumentError("spec.playbook: is required");
      continue;
    }
    if (!p->is_string() || !files->contains(p->get<std::string>()))
      return absl::InvalidArgumentError(absl::StrCat("spec.", key, ": must name a file of spec.files"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> PlaybookRunner::ResolveSecrets() const {
  std::map<std::string, std::string> out;
  for (const auto& [name, ref] : config_.secret_vars()) {
    absl::StatusOr<std::string> value = secrets_(ref, "target.ansible.secret_vars." + name);
    if (!value.ok()) return value.status();
    out[name] = *std::move(value);
  }
  return out;
}

absl::StatusOr<PlaybookOutcome> PlaybookRunner::Run(const PlaybookRun& run) const {
  if (run.spec == nullptr || !run.spec->is_object() || !run.spec->contains("files"))
    return absl::InvalidArgumentError("spec.files: is required");
  if (!fs::exists(options_.ansible_playbook_path)) {
    return absl::FailedPreconditionError(absl::StrCat(options_.ansible_playbook_path,
                                                      " not found (Debian's ansible package; scripts/install-deps "
                                                      "installs it; --ansible-playbook-path)"));
  }
  const json& files = (*run.spec)["files"];
  if (!files.contains(run.playbook))
    return absl::InvalidArgumentError(absl::StrCat("playbook \"", run.playbook, "\" is not in the application folder"));
  absl::StatusOr<std::map<std::string, std::string>> secret_vars = ResolveSecrets();
  if (!secret_vars.ok()) return secret_vars.status();
  std::vector<std::string> secret_values;
  for (const auto& [k, v] : *secret_vars) secret_values.push_back(v);
  std::string key;
  const bool ssh = config_.connection() == v1::ANSIBLE_CONNECTION_SSH;
  if (ssh) {
    absl::StatusOr<std::string> k = secrets_(config_.ssh_private_key(), "target.ansible.ssh_private_key");
    if (!k.ok()) return k.status();
    key = *std::move(k);
    if (!absl::EndsWith(key, "\n")) key += "\n";
    secret_values.push_back(std::string(absl::StripAsciiWhitespace(key)));
  }

  absl::StatusOr<Workspace> ws = Workspace::Make(options_.scratch_root);
  if (!ws.ok()) return ws.status();
  const std::string project = ws->path() + "/project";
  const std::string home = ws->path() + "/home";
  const std::string tmp = ws->path() + "/tmp";
  const std::string private_dir = ws->path() + "/private";
  std::error_code ec;
  for (const std::string& d : {project, home, tmp, private_dir}) {
    if (!fs::create_directory(d, ec) || ec) return absl::InternalError(absl::StrCat("cannot create ", d));
  }
  ::chmod(private_dir.c_str(), 0700);
  for (const auto& [rel, value] : files.items()) {
    if (!SafeRelative(rel))
      return absl::InvalidArgumentError(absl::StrCat("spec.files: \"", rel, "\" is not a path inside the folder"));
    absl::StatusOr<std::string> content = FileContent(value, rel);
    if (!content.ok()) return content.status();
    fs::path dest = fs::path(project) / rel;
    fs::create_directories(dest.parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", dest.parent_path().string()));
    RETURN_IF_ERROR(WriteFile(dest.string(), *content, 0644));
  }
  const std::string inventory =
      config_.inventory().empty() ? absl::StrCat("inventory/", run.environment_id) : config_.inventory();
  if (!SafeRelative(inventory) || !fs::exists(fs::path(project) / inventory)) {
    return absl::InvalidArgumentError(absl::StrCat("inventory \"", inventory,
                                                   "\" is not in the application folder (target.ansible.inventory; "
                                                   "default inventory/<environment id>)"));
  }
  json vars = json::object();
  for (const auto& [k, v] : config_.extra_vars()) vars[k] = v;
  for (const auto& [k, v] : *secret_vars) vars[k] = v;
  absl::StatusOr<std::string> vars_text = DumpJson(vars);
  if (!vars_text.ok()) return vars_text.status();
  const std::string vars_file = private_dir + "/vars.json";
  RETURN_IF_ERROR(WriteFile(vars_file, *vars_text, 0600));
  std::vector<std::string> argv = {options_.ansible_playbook_path, "-i", project + "/" + inventory,
                                   project + "/" + run.playbook, "--diff", "-e", "@" + vars_file,
                                   absl::StrCat("--forks=", options_.forks)};
  if (run.check) argv.push_back("--check");
  std::vector<std::string> env = {"PATH=/usr/bin:/bin",
                                  "HOME=" + home,
                                  "LANG=C.UTF-8",
                                  "ANSIBLE_STDOUT_CALLBACK=ansible.posix.json",
                                  "ANSIBLE_LOCAL_TEMP=" + tmp,
                                  "ANSIBLE_REMOTE_TMP=" + (ssh ? std::string("~/.ansible/tmp") : tmp + "/remote"),
                                  "ANSIBLE_RETRY_FILES_ENABLED=False",
                                  "ANSIBLE_NOCOLOR=True",
                                  "ANSIBLE_PYTHON_INTERPRETER=auto_silent",
                                  "ANSIBLE_DEPRECATION_WARNINGS=False",
                                  "ANSIBLE_LOCALHOST_WARNING=False",
                                  "ANSIBLE_INVENTORY_UNPARSED_WARNING=False",
                                  "ANSIBLE_HOST_KEY_CHECKING=True"};
  if (ssh) {
    const std::string key_file = private_dir + "/id";
    RETURN_IF_ERROR(WriteFile(key_file, key, 0600));
    std::ifstream kh(config_.known_hosts_file(), std::ios::binary);
    if (!kh) {
      return absl::InvalidArgumentError(absl::StrCat("target.ansible.known_hosts_file: cannot read \"",
                                                     config_.known_hosts_file(), "\""));
    }
    std::string known((std::istreambuf_iterator<char>(kh)), std::istreambuf_iterator<char>());
    const std::string known_file = private_dir + "/known_hosts";
    RETURN_IF_ERROR(WriteFile(known_file, known, 0600));
    argv.insert(argv.end(), {"--connection=ssh", "--private-key=" + key_file});
    if (!config_.ssh_user().empty()) argv.push_back("--user=" + config_.ssh_user());
    env.push_back(absl::StrCat("ANSIBLE_SSH_ARGS=-o UserKnownHostsFile=", known_file,
                               " -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o BatchMode=yes"
                               " -o ControlMaster=no -o GlobalKnownHostsFile=/dev/null"));
  } else {
    argv.push_back("--connection=local");
  }
  RETURN_IF_ERROR(Chown(ws->path(), who_));

  process::ProcessOptions sub;
  sub.working_dir = project;
  sub.env = env;
  sub.timeout = std::max(absl::Seconds(1), std::min(options_.timeout, run.time_left));
  sub.max_stdout_bytes = options_.max_output_bytes;
  sub.max_stderr_bytes = 64 << 10;
  sub.kill_at_stdout_limit = true;
  process::Sandbox sandbox;
  sandbox.limits.address_space_bytes = options_.memory_limit_mb << 20;
  sandbox.limits.address_space_flag = "--ansible-memory-limit-mb";
  sandbox.limits.cpu_seconds = options_.cpu_seconds;
  sandbox.limits.cpu_flag = "--ansible-cpu-seconds";
  sandbox.limits.file_size_bytes = options_.file_size_limit_mb << 20;
  sandbox.limits.file_size_flag = "--ansible-file-size-limit-mb";
  sandbox.limits.open_files = 1024;
  sandbox.uid = who_.uid;
  sandbox.gid = who_.gid;
  sub.sandbox = sandbox;
  absl::StatusOr<process::ProcessResult> result = process::RunProcess(argv, sub);
  if (!result.ok()) return result.status();
  const std::string what = absl::StrCat("ansible-playbook ", run.playbook, run.check ? " --check" : "");
  if (result->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat(what, " did not finish within ", absl::FormatDuration(sub.timeout), " and was killed (--ansible-timeout)"));
  }
  if (!result->limit_exceeded.empty())
    return absl::ResourceExhaustedError(absl::StrCat(what, " ran into ", result->limit_exceeded, " and was stopped"));
  if (result->stdout_truncated) {
    return absl::ResourceExhaustedError(absl::StrCat(what, " wrote more than ", sub.max_stdout_bytes,
                                                     " bytes of results and was stopped (--ansible-max-output-mb)"));
  }
  absl::StatusOr<PlaybookResults> parsed = ParsePlaybookJson(result->stdout_text, project);
  if (!parsed.ok()) {
    std::string err(absl::StripAsciiWhitespace(result->stderr_text));
    err = absl::StrReplaceAll(err, {{project + "/", ""}, {ws->path(), "<scratch>"}});
    err = Scrub(err, secret_values);
    if (err.size() > 2000) err = err.substr(0, 2000) + "...";
    return absl::InvalidArgumentError(
        absl::StrCat(what, " failed (exit ", result->exit_code, "): ", err.empty() ? parsed.status().message() : err));
  }
  for (TaskResult& t : parsed->tasks) {
    for (std::string* s : {&t.task, &t.message, &t.diff_before, &t.diff_after, &t.diff_header}) {
      *s = absl::StrReplaceAll(*s, {{project + "/", ""}, {ws->path(), "<scratch>"}});
      *s = Scrub(*s, secret_values);
    }
  }
  PlaybookOutcome out;
  out.results = *std::move(parsed);
  out.exit_code = result->exit_code;
  return out;
}

}  // namespace ferry::deployer::ansible
