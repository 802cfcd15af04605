#include "services/deployer/terraform/terraform_stack.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"

namespace ferry::deployer::terraform {
namespace {

constexpr char kPlanFile[] = "ferry.tfplan";
constexpr char kBackendFile[] = "ferry_backend.tf";

std::string Tail(const std::string& output) {
  constexpr size_t kKeep = 4000;
  return output.size() <= kKeep ? output : "..." + output.substr(output.size() - kKeep);
}

// A failed run as a status: its output names what went wrong.
absl::Status Failed(const std::string& step, const RunResult& r, absl::StatusCode code) {
  if (r.ended != RunResult::Ended::kExited) {
    absl::StatusCode c = r.ended == RunResult::Ended::kTimedOut ? absl::StatusCode::kDeadlineExceeded
                         : r.ended == RunResult::Ended::kLimit  ? absl::StatusCode::kResourceExhausted
                                                                : absl::StatusCode::kInternal;
    return absl::Status(c, absl::StrCat(r.failure, "\n", Tail(r.output)));
  }
  if (absl::StrContains(r.output, "Error acquiring the state lock"))
    return absl::UnavailableError(absl::StrCat("terraform ", step, ": the state is locked by another run\n", Tail(r.output)));
  return absl::Status(code, absl::StrCat("terraform ", step, " failed (exit ", r.exit_code, ")\n", Tail(r.output)));
}

bool DeclaresBackend(const Configuration& config) {
  for (const auto& [path, content] : config)
    if (absl::EndsWith(path, ".tf") && absl::StrContains(content, "backend \"")) return true;
  return false;
}

std::string LockTimeout(const RunnerSettings& s) {
  return absl::StrCat("-lock-timeout=", absl::ToInt64Seconds(s.lock_timeout), "s");
}

}  // namespace

std::string PlanDigest(const std::string& plan_file) { return "sha256:" + Sha256Hex(plan_file); }

std::vector<std::string> Stack::SecretValues() const {
  std::vector<std::string> out;
  for (const auto& [name, value] : settings_.secret_variables) out.push_back(value);
  return out;
}

absl::StatusOr<Workspace> Stack::Init(const Configuration& config, const RunnerSettings& settings,
                                      std::string& log) const {
  Configuration files = config;
  if (!settings.pg_conn_str.empty()) {
    if (DeclaresBackend(config))
      return absl::InvalidArgumentError(
          "the configuration declares a backend and the environment gives the pg backend's connection: "
          "remove one (Ferry's pg backend, one schema per environment, or your own backend block)");
    files[kBackendFile] = "terraform {\n  backend \"pg\" {}\n}\n";
  }
  absl::StatusOr<Workspace> ws = Workspace::Make(settings, files);
  if (!ws.ok()) return ws.status();
  absl::StatusOr<RunResult> init = ws->Run({"init", "-no-color", "-input=false", LockTimeout(settings)});
  if (!init.ok()) return init.status();
  log = init->output;
  if (init->exit_code != 0 || !init->failure.empty()) return Failed("init", *init, absl::StatusCode::kInvalidArgument);
  return ws;
}

absl::StatusOr<SavedPlan> Stack::Plan(const Configuration& config) const {
  SavedPlan out;
  absl::StatusOr<Workspace> ws = Init(config, settings_, out.log);
  if (!ws.ok()) return ws.status();
  absl::StatusOr<RunResult> plan =
      ws->Run({"plan", "-no-color", "-input=false", LockTimeout(settings_), absl::StrCat("-out=", kPlanFile)});
  if (!plan.ok()) return plan.status();
  absl::StrAppend(&out.log, plan->output);
  if (plan->exit_code != 0 || !plan->failure.empty()) return Failed("plan", *plan, absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::string> file = ws->Read(kPlanFile);
  if (!file.ok()) return absl::InternalError("terraform plan wrote no plan file");
  out.plan_file = *std::move(file);
  out.digest = PlanDigest(out.plan_file);
  absl::StatusOr<PlanView> view = ShowSavedPlan(*ws);
  if (!view.ok()) return view.status();
  out.view = *std::move(view);
  return out;
}

absl::StatusOr<PlanView> Stack::ShowSavedPlan(Workspace& ws) const {
  absl::StatusOr<RunResult> show = ws.Run({"show", "-no-color", "-json", kPlanFile}, /*redact=*/false,
                                             settings_.max_plan_json_bytes);
  if (!show.ok()) return show.status();
  if (show->exit_code != 0 || !show->failure.empty()) {
    show->output = ws.Redact(show->output);
    return Failed("show", *show, absl::StatusCode::kInternal);
  }
  // show's output is raw JSON (variables, state and all): ReadPlanJson keeps
  // only the resource and output changes, masking what Terraform marks
  // sensitive and every string holding a secret value.
  if (show->truncated)
    return absl::ResourceExhaustedError(
        absl::StrCat("the plan's JSON is larger than ", settings_.max_plan_json_bytes, " bytes"));
  return ReadPlanJson(show->output, SecretValues());
}

absl::StatusOr<ApplyResult> Stack::Apply(const Configuration& config, const std::string& plan_file,
                                         const std::string& digest, absl::Duration timeout) const {
  if (PlanDigest(plan_file) != digest)
    return absl::FailedPreconditionError(absl::StrCat("the saved plan file's digest is ", PlanDigest(plan_file),
                                                      ", not the approved ", digest, "; nothing was applied"));
  ApplyResult out;
  out.digest = digest;
  RunnerSettings settings = settings_;
  settings.timeout = std::min(settings.timeout, timeout);
  absl::StatusOr<Workspace> ws = Init(config, settings, out.log);
  if (!ws.ok()) return ws.status();
  absl::Status w = ws->Write(kPlanFile, plan_file);
  if (!w.ok()) return w;
  absl::StatusOr<RunResult> apply =
      ws->Run({"apply", "-no-color", "-input=false", "-auto-approve", LockTimeout(settings), kPlanFile});
  if (!apply.ok()) return apply.status();
  absl::StrAppend(&out.log, apply->output);
  if (apply->exit_code == 0 && apply->failure.empty()) return out;
  if (absl::StrContains(apply->output, "Saved plan is stale"))
    return absl::FailedPreconditionError(
        absl::StrCat("plan is stale: the state changed since plan ", digest,
                     " was made (another apply ran); nothing was applied; re-plan and approve the new plan\n",
                     Tail(apply->output)));
  return Failed("apply", *apply, absl::StatusCode::kInternal);
}

absl::StatusOr<DriftResult> Stack::CheckDrift(const Configuration& config) const {
  DriftResult out;
  absl::StatusOr<Workspace> ws = Init(config, settings_, out.log);
  if (!ws.ok()) return ws.status();
  absl::StatusOr<RunResult> plan = ws->Run({"plan", "-no-color", "-input=false", "-detailed-exitcode",
                                            LockTimeout(settings_), absl::StrCat("-out=", kPlanFile)});
  if (!plan.ok()) return plan.status();
  absl::StrAppend(&out.log, plan->output);
  if (!plan->failure.empty() || (plan->exit_code != 0 && plan->exit_code != 2))
    return Failed("plan -detailed-exitcode", *plan, absl::StatusCode::kInvalidArgument);
  out.drifted = plan->exit_code == 2;
  if (out.drifted) {
    absl::StatusOr<PlanView> view = ShowSavedPlan(*ws);
    if (!view.ok()) return view.status();
    out.view = *std::move(view);
  }
  return out;
}

}  // namespace ferry::deployer::terraform
