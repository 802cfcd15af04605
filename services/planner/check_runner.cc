#include "services/planner/check_runner.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/json/json.h"
#include "common/kube/secret_mask.h"
#include "common/process/run_process.h"
#include "common/process/tool_slot.h"
#include "common/status/status_macros.h"
#include "common/text/utf8.h"

namespace ferry::planner {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A file name part from an object's kind or name: [A-Za-z0-9._-] kept,
// anything else '_', at most 80 bytes.
std::string FileNamePart(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-';
    out.push_back(keep ? c : '_');
  }
  if (out.empty() || out == "." || out == "..") out = "_";
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("check scratch folder: cannot create ", path, ": ", strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return absl::UnavailableError(absl::StrCat("check scratch folder: cannot write ", path, ": ", strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0)
    return absl::UnavailableError(absl::StrCat("check scratch folder: cannot write ", path, ": ", strerror(errno)));
  return absl::OkStatus();
}

// A scratch folder, removed when it goes out of scope.
class Scratch {
 public:
  ~Scratch() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  absl::Status Make(const std::string& root) {
    std::string tmpl = root + "/ferry-check-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      return absl::UnavailableError(absl::StrCat("check scratch folder: cannot make one under ", root, ": ", strerror(errno)));
    path_ = tmpl;
    return absl::OkStatus();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Gives the tree under `dir` to uid:gid (a check run as another user must
// read its manifests and may write beside them).
absl::Status ChownTree(const std::string& dir, uid_t uid, gid_t gid) {
  std::error_code ec;
  if (::lchown(dir.c_str(), uid, gid) != 0)
    return absl::UnavailableError(absl::StrCat("check scratch folder: cannot give ", dir, " to uid ", uid, ": ", strerror(errno)));
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (::lchown(it->path().c_str(), uid, gid) != 0)
      return absl::UnavailableError(
          absl::StrCat("check scratch folder: cannot give ", it->path().string(), " to uid ", uid, ": ", strerror(errno)));
  }
  if (ec) return absl::UnavailableError(absl::StrCat("check scratch folder: ", ec.message()));
  return absl::OkStatus();
}

}  // namespace

std::vector<v1::CheckCommand> ChecksFor(const v1::Application& app, const std::string& environment_id) {
  std::vector<v1::CheckCommand> out;
  for (const v1::CheckCommand& c : app.checks()) {
    bool applies = c.environment_ids().empty();
    for (const std::string& e : c.environment_ids()) applies = applies || e == environment_id;
    if (applies) out.push_back(c);
  }
  return out;
}

absl::StatusOr<std::vector<v1::CheckRun>> CheckRunner::RunAll(const v1::Application& app, const v1::Plan& plan) const {
  std::vector<v1::CheckRun> runs;
  for (const v1::CheckCommand& check : ChecksFor(app, plan.environment_id())) {
    ASSIGN_OR_RETURN(v1::CheckRun run, Run(check, plan));
    runs.push_back(std::move(run));
  }
  return runs;
}

absl::StatusOr<v1::CheckRun> CheckRunner::Run(const v1::CheckCommand& check, const v1::Plan& plan) const {
  if (check.argv().empty() || check.argv(0).empty())
    return absl::InvalidArgumentError(absl::StrCat("check \"", check.name(), "\": the command is empty"));
  if (!options_.uid.has_value() && !options_.run_as_self) {
    v1::CheckRun refused;
    refused.set_name(check.name());
    refused.set_result(v1::CHECK_RUN_RESULT_FAILED);
    refused.set_exit_code(-1);
    refused.set_description(
        "not run: this planner runs checks only as --check-user, or as itself with --checks-as-planner-user "
        "(docs/checks.md)");
    refused.mutable_finish_time()->set_seconds(absl::ToUnixSeconds(clock_->Now()));
    return refused;
  }
  // The scratch folder: the plan's rendered manifests and plan.json, nothing else.
  Scratch scratch;
  RETURN_IF_ERROR(scratch.Make(options_.scratch_root));
  const std::string dir = scratch.path();
  const std::string manifests_dir = dir + "/manifests";
  const std::string home = dir + "/home";
  for (const std::string& d : {manifests_dir, home}) {
    if (::mkdir(d.c_str(), 0755) != 0)
      return absl::UnavailableError(absl::StrCat("check scratch folder: cannot make ", d, ": ", strerror(errno)));
  }
  json listed = json::array();
  for (int i = 0; i < plan.manifests_size(); ++i) {
    const v1::Manifest& m = plan.manifests(i);
    const std::string name = absl::StrFormat("%04d-%s-%s.json", i + 1, FileNamePart(m.object().kind()),
                                             FileNamePart(m.object().name()));
    // Kubernetes Secret values as digests only, as the plan's diff shows them.
    std::string text = m.json();
    if (absl::StatusOr<json> object = ParseJson(m.json()); object.ok()) {
      kube::MaskSecretValues(*object);
      text = DumpJsonLossy(*object, 2);
    }
    RETURN_IF_ERROR(WriteFile(manifests_dir + "/" + name, text + "\n"));
    listed.push_back({{"file", "manifests/" + name},
                      {"group", m.object().group()},
                      {"kind", m.object().kind()},
                      {"namespace", m.object().namespace_()},
                      {"name", m.object().name()},
                      {"sourcePath", m.source_path()}});
  }
  const json context = {{"check", check.name()},
                         {"application", plan.application_id()},
                         {"environment", plan.environment_id()},
                         {"repository", plan.target_revision().repository_id()},
                         {"ref", plan.target_revision().ref()},
                         {"sha", plan.target_revision().sha()},
                         {"manifestsDigest", plan.manifests_digest()},
                         {"manifests", listed}};
  RETURN_IF_ERROR(WriteFile(dir + "/plan.json", DumpJsonLossy(context, 2) + "\n"));
  if (options_.uid.has_value()) {
    RETURN_IF_ERROR(ChownTree(dir, *options_.uid, options_.gid));
  } else if (::chmod(dir.c_str(), 0700) != 0) {
    return absl::UnavailableError(absl::StrCat("check scratch folder: cannot chmod ", dir, ": ", strerror(errno)));
  }

  process::ProcessOptions opts;
  opts.env = process::MinimalEnvironment(home);
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"FERRY_CHECK", check.name()},
           {"FERRY_APPLICATION", plan.application_id()},
           {"FERRY_ENVIRONMENT", plan.environment_id()},
           {"FERRY_REPOSITORY", plan.target_revision().repository_id()},
           {"FERRY_COMMIT_SHA", plan.target_revision().sha()},
           {"FERRY_MANIFESTS_DIR", manifests_dir},
           {"FERRY_PLAN_FILE", dir + "/plan.json"}})
    opts.env.push_back(k + "=" + v);
  opts.working_dir = dir;
  const absl::Duration timeout = absl::Seconds(check.timeout().seconds() > 0 ? check.timeout().seconds() : 60);
  opts.timeout = timeout;
  opts.merge_stderr_into_stdout = true;
  opts.max_stdout_bytes = options_.max_output_bytes;
  process::Sandbox sandbox;
  const std::string field = absl::StrCat("checks.", check.name());
  sandbox.limits.address_space_bytes = static_cast<uint64_t>(check.memory_limit_bytes());
  sandbox.limits.address_space_flag = field + ".memoryLimit";
  sandbox.limits.cpu_seconds = static_cast<uint64_t>(absl::ToInt64Seconds(timeout));
  sandbox.limits.cpu_flag = field + ".timeout";
  sandbox.limits.file_size_bytes = options_.file_size_limit_bytes;
  sandbox.limits.file_size_flag = "--check-file-size-limit-mb";
  sandbox.limits.open_files = options_.open_files;
  sandbox.isolate_network = options_.isolate_network;
  sandbox.uid = options_.uid;
  sandbox.gid = options_.gid;
  opts.sandbox = sandbox;

  v1::CheckRun run;
  run.set_name(check.name());
  run.set_exit_code(-1);
  process::ToolSlot slot(options_.tool_slots);  // held while it runs
  const absl::Time start = clock_->Now();
  absl::StatusOr<process::ProcessResult> result =
      process::RunProcess(std::vector<std::string>(check.argv().begin(), check.argv().end()), opts);
  const absl::Time end = clock_->Now();
  const absl::Duration took = end - start;
  run.mutable_duration()->set_seconds(absl::ToInt64Seconds(took));
  run.mutable_duration()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(took - absl::Seconds(absl::ToInt64Seconds(took)))));
  run.mutable_finish_time()->set_seconds(absl::ToUnixSeconds(end));
  run.set_result(v1::CHECK_RUN_RESULT_FAILED);
  const std::string& program = check.argv(0);
  if (!result.ok()) {
    switch (result.status().code()) {
      case absl::StatusCode::kNotFound:
        run.set_description(absl::StrCat("program ", program, " not found"));
        break;
      case absl::StatusCode::kPermissionDenied:
        run.set_description(absl::StrCat("program ", program, " cannot be executed: ", result.status().message()));
        break;
      case absl::StatusCode::kInvalidArgument:
        run.set_description(absl::StrCat("program ", program, " cannot be started: ", result.status().message()));
        break;
      default:
        // Waiting for it failed: its outcome is unknown; nothing is recorded.
        return absl::UnavailableError(absl::StrCat("check \"", check.name(), "\": ", result.status().message()));
    }
    return run;
  }
  run.set_exit_code(result->exit_code);
  run.set_output(text::SanitizeUtf8(result->stdout_text));
  run.set_output_truncated(result->stdout_truncated);
  if (!result->limit_exceeded.empty()) {
    run.set_description(absl::StrCat("ran into ", result->limit_exceeded, " and was stopped"));
  } else if (result->timed_out) {
    run.set_description(absl::StrCat("did not finish within ", absl::FormatDuration(timeout), " and was killed"));
  } else if (result->term_signal != 0) {
    run.set_description(absl::StrCat("killed by signal ", result->term_signal));
  } else {
    run.set_description(absl::StrCat("exited ", result->exit_code));
    if (result->exit_code == 0) run.set_result(v1::CHECK_RUN_RESULT_PASSED);
  }
  return run;
}

}  // namespace ferry::planner
