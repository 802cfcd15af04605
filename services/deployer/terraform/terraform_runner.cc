#include "services/deployer/terraform/terraform_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/process/run_process.h"

namespace ferry::deployer::terraform {
namespace {

namespace fs = std::filesystem;

bool Executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0 && fs::is_regular_file(path); }

absl::Status CheckRelativePath(const std::string& path) {
  if (path.empty() || path[0] == '/') return absl::InvalidArgumentError(absl::StrCat("terraform file \"", path, "\": not a relative path"));
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == ".." || part == "." || part.empty())
      return absl::InvalidArgumentError(absl::StrCat("terraform file \"", path, "\": \".\", \"..\" and empty parts are not allowed"));
    if (part == ".terraform")
      return absl::InvalidArgumentError(absl::StrCat("terraform file \"", path, "\": .terraform is terraform's own folder"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> FindTerraformBinary(const std::string& configured, const std::string& tools_dir) {
  if (!configured.empty()) {
    if (!Executable(configured)) return absl::NotFoundError(absl::StrCat("terraform binary ", configured, " is not an executable file"));
    return configured;
  }
  for (absl::string_view dir : absl::StrSplit(process::kDefaultCommandPath, ':')) {
    std::string candidate = absl::StrCat(dir, "/terraform");
    if (Executable(candidate)) return candidate;
  }
  std::string tofu = absl::StrCat(tools_dir, "/bin/tofu");
  if (!tools_dir.empty() && Executable(tofu)) return tofu;
  return absl::NotFoundError(absl::StrCat("no terraform: none configured, none on ", process::kDefaultCommandPath,
                                          ", and no ", tofu, " (scripts/install-terraform builds OpenTofu there)"));
}

Workspace::Workspace(const RunnerSettings& settings, std::string dir) : settings_(&settings), dir_(std::move(dir)) {}

Workspace::Workspace(Workspace&& o) noexcept : settings_(o.settings_), dir_(std::move(o.dir_)) { o.dir_.clear(); }

Workspace::~Workspace() {
  if (dir_.empty()) return;
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

absl::StatusOr<Workspace> Workspace::Make(const RunnerSettings& settings, const std::map<std::string, std::string>& files) {
  for (const auto& [path, content] : files) {
    absl::Status ok = CheckRelativePath(path);
    if (!ok.ok()) return ok;
  }
  std::string tmpl = settings.scratch_root + "/ferry-terraform-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr)
    return absl::InternalError(absl::StrCat("cannot create a terraform workspace under ", settings.scratch_root));
  Workspace ws(settings, tmpl);
  if (settings.uid && ::chown(ws.dir_.c_str(), *settings.uid, settings.gid) != 0)
    return absl::InternalError(absl::StrCat("cannot give the terraform workspace to uid ", *settings.uid));
  for (const auto& [path, content] : files) {
    fs::path full = fs::path(ws.dir_) / path;
    std::error_code ec;
    fs::create_directories(full.parent_path(), ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create the folder of ", path, ": ", ec.message()));
    if (settings.uid) {
      // Each folder between the workspace and the file belongs to the run-as user too.
      for (fs::path p = full.parent_path(); p.string().size() > ws.dir_.size(); p = p.parent_path())
        if (::chown(p.c_str(), *settings.uid, settings.gid) != 0) return absl::InternalError("cannot chown " + p.string());
    }
    absl::Status w = ws.Write(path, content);
    if (!w.ok()) return w;
  }
  return ws;
}

absl::Status Workspace::Write(const std::string& name, const std::string& content) const {
  std::string path = dir_ + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot write ", name, " in the terraform workspace"));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat("cannot write ", name, " in the terraform workspace"));
    }
    done += static_cast<size_t>(n);
  }
  if (settings_->uid && ::fchown(fd, *settings_->uid, settings_->gid) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot give ", name, " to uid ", *settings_->uid));
  }
  ::close(fd);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Workspace::Read(const std::string& name) const {
  std::ifstream in(dir_ + "/" + name, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(name, " is not in the terraform workspace"));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Workspace::Redact(std::string text) const {
  std::vector<std::pair<std::string, std::string>> masks;
  for (const auto& [name, value] : settings_->secret_variables)
    if (!value.empty()) masks.emplace_back(value, absl::StrCat("(sensitive: var.", name, ")"));
  if (!settings_->pg_conn_str.empty()) masks.emplace_back(settings_->pg_conn_str, "(backend connection string)");
  return absl::StrReplaceAll(text, masks);
}

absl::StatusOr<RunResult> Workspace::Run(const std::vector<std::string>& args, bool redact, size_t max_output) const {
  std::vector<std::string> argv = {settings_->binary};
  argv.insert(argv.end(), args.begin(), args.end());
  process::ProcessOptions options;
  options.env = {absl::StrCat("PATH=", process::kDefaultCommandPath),
                 "LANG=C.UTF-8",
                 absl::StrCat("HOME=", dir_),
                 "TF_IN_AUTOMATION=1",
                 "TF_INPUT=0",
                 "TF_CLI_CONFIG_FILE=/dev/null",
                 "CHECKPOINT_DISABLE=1"};
  if (!settings_->pg_conn_str.empty()) {
    options.env.push_back(absl::StrCat("PG_CONN_STR=", settings_->pg_conn_str));
    options.env.push_back(absl::StrCat("PG_SCHEMA_NAME=", settings_->pg_schema));
  }
  for (const auto& [name, value] : settings_->variables) options.env.push_back(absl::StrCat("TF_VAR_", name, "=", value));
  for (const auto& [name, value] : settings_->secret_variables)
    options.env.push_back(absl::StrCat("TF_VAR_", name, "=", value));
  options.working_dir = dir_;
  options.timeout = settings_->timeout;
  if (max_output == 0) max_output = settings_->max_output_bytes;
  options.max_stdout_bytes = max_output;
  options.merge_stderr_into_stdout = true;
  process::Sandbox sandbox;
  sandbox.limits.address_space_bytes = settings_->memory_limit_mb << 20;
  sandbox.limits.address_space_flag = "terraform memoryLimitMb";
  sandbox.limits.cpu_seconds = settings_->cpu_seconds;
  sandbox.limits.cpu_flag = "terraform cpuSeconds";
  sandbox.limits.open_files = 1024;
  sandbox.uid = settings_->uid;
  sandbox.gid = settings_->gid;
  options.sandbox = sandbox;
  absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, options);
  if (!r.ok()) return r.status();
  RunResult out;
  out.exit_code = r->exit_code;
  out.output = redact ? Redact(r->stdout_text) : r->stdout_text;
  out.truncated = r->stdout_truncated;
  if (r->stdout_truncated) absl::StrAppend(&out.output, "\n[output truncated at ", max_output, " bytes]");
  const std::string what = absl::StrCat("terraform ", args.empty() ? "" : args[0]);
  if (r->timed_out) {
    out.ended = RunResult::Ended::kTimedOut;
    out.failure = absl::StrCat(what, " timed out after ", absl::FormatDuration(settings_->timeout));
  } else if (!r->limit_exceeded.empty()) {
    out.ended = RunResult::Ended::kLimit;
    out.failure = absl::StrCat(what, " hit ", r->limit_exceeded);
  } else if (!r->exited()) {
    out.ended = RunResult::Ended::kSignal;
    out.failure = absl::StrCat(what, " was killed by signal ", r->term_signal);
    // A Go program that cannot reserve address space dies by SIGSEGV or
    // SIGABRT without a word: name the limit that likely did it.
    if ((r->term_signal == SIGSEGV || r->term_signal == SIGABRT) && settings_->memory_limit_mb != 0) {
      out.ended = RunResult::Ended::kLimit;
      absl::StrAppend(&out.failure, ", likely the memory limit of ", settings_->memory_limit_mb,
                      " MiB (terraform memoryLimitMb)");
    }
  }
  return out;
}

}  // namespace ferry::deployer::terraform
