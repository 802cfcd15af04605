#include "tests/deployer/test_util.h"

#include <dirent.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/deployer/host/detached_process.h"

namespace ferry::deployer::testing {

using nlohmann::json;
namespace fs = std::filesystem;

json ServerProcess(const std::string& name, const std::string& version, int replicas,
                   const std::vector<std::pair<std::string, std::string>>& extra_env) {
  json env = json::array({{{"name", "VERSION"}, {"value", version}}});
  for (const auto& [k, v] : extra_env) env.push_back({{"name", k}, {"value", v}});
  return {{"apiVersion", "ferry.dev/v1"},
          {"kind", "Process"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"command", {"/usr/bin/python3", FERRY_TEST_SERVER}},
            {"env", env},
            {"replicas", replicas},
            {"ports", {{{"name", "http"}}}},
            {"healthCheck",
             {{"http", {{"port", "http"}, {"path", "/healthz"}}},
              {"periodSeconds", 0.1},
              {"timeoutSeconds", 1},
              {"failureThreshold", 2}}},
            {"stopTimeoutSeconds", 5}}}};
}

json ConfigFile(const std::string& name, const std::string& path, const std::string& content) {
  return {{"apiVersion", "ferry.dev/v1"},
          {"kind", "ConfigFile"},
          {"metadata", {{"name", name}}},
          {"spec", {{"path", path}, {"content", content}, {"mode", "0644"}}}};
}

v1::Plan MakePlan(const std::string& id, const std::vector<json>& objects, const PlanOptions& o) {
  v1::Plan p;
  p.set_id(id);
  p.set_application_id("web-app");
  p.set_environment_id("dev");
  p.set_state(v1::PLAN_STATE_APPROVED);
  p.set_trigger(v1::PLAN_TRIGGER_NEW_REVISION);
  p.mutable_target_revision()->set_repository_id("repo");
  p.mutable_target_revision()->set_ref("refs/heads/main");
  p.mutable_target_revision()->set_sha(o.sha);
  p.set_manifests_digest("sha256:" + o.sha);
  for (const json& obj : objects) {
    v1::Manifest* m = p.add_manifests();
    m->mutable_object()->set_group("ferry.dev");
    m->mutable_object()->set_version("v1");
    m->mutable_object()->set_kind(obj.value("kind", ""));
    m->mutable_object()->set_name(obj["metadata"].value("name", ""));
    m->set_json(obj.dump());
    m->set_source_path("apps/web/" + obj["metadata"].value("name", "") + ".yaml");
    if (obj["metadata"].contains("annotations")) {
      m->set_wave(std::stoi(obj["metadata"]["annotations"].value("ferry.dev/sync-wave", "0")));
    }
  }
  p.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  p.mutable_target()->mutable_host()->set_root_dir(o.root);
  p.mutable_sync_policy()->set_automated(true);
  p.mutable_sync_policy()->set_prune(o.prune);
  p.mutable_sync_policy()->set_self_heal(o.self_heal);
  p.mutable_health_timeout()->set_seconds(absl::ToInt64Seconds(o.health_timeout));
  p.mutable_decision()->set_automatic(o.automatic);
  p.mutable_decision()->mutable_actor()->set_id(o.automatic ? "ferry" : "alice");
  return p;
}

int KillAllUnder(const std::string& root) {
  int killed = 0;
  std::error_code ec;
  fs::path run = fs::path(root) / ".ferry" / "run";
  if (!fs::exists(run, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(run, ec)) {
    if (e.path().extension() != ".json") continue;
    std::ifstream in(e.path());
    json j = json::parse(in, nullptr, false);
    if (j.is_discarded()) continue;
    host::ProcessIdentity id{j.value("pid", 0), j.value("start_time", uint64_t{0})};
    if (host::IsAlive(id)) {
      ++killed;
      host::StopProcess(id, SIGKILL, absl::Seconds(5));
    }
  }
  return killed;
}

int CountProcessesUnder(const std::string& root) {
  int n = 0;
  std::string needle = "FERRY_INSTANCE=" + root + "/";
  DIR* d = opendir("/proc");
  while (dirent* e = readdir(d)) {
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    std::ifstream in(absl::StrCat("/proc/", pid, "/environ"), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (ss.str().find(needle) != std::string::npos && host::ProcessStartTime(pid) != 0) ++n;
  }
  closedir(d);
  return n;
}

absl::Status FakePlanSource::Watch(const std::string&, const PlanCallback&) {
  ferry::MutexLock l(&mu_);
  while (!cancelled_) cv_.Wait(&mu_);
  return absl::CancelledError("cancelled");
}

void FakePlanSource::Cancel() {
  ferry::MutexLock l(&mu_);
  cancelled_ = true;
  cv_.SignalAll();
}

absl::StatusOr<v1::AcknowledgePlanResponse> FakePlanSource::Acknowledge(const v1::AcknowledgePlanRequest& r) {
  ferry::MutexLock l(&mu_);
  acks_.push_back(r);
  v1::AcknowledgePlanResponse resp;
  if (hold_) {
    resp.set_proceed(false);
    resp.set_state(v1::PLAN_STATE_APPROVED);
    resp.set_reason("held by a sync window");
    return resp;
  }
  resp.set_proceed(true);
  resp.set_state(v1::PLAN_STATE_EXECUTING);
  return resp;
}

absl::Status FakePlanSource::ReportResult(const v1::ReportPlanResultRequest& r) {
  ferry::MutexLock l(&mu_);
  results_.push_back(r);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<absl::Status>> FakePlanSource::ReportResults(
    const std::vector<v1::ReportPlanResultRequest>& requests) {
  ferry::MutexLock l(&mu_);
  results_.insert(results_.end(), requests.begin(), requests.end());
  return std::vector<absl::Status>(requests.size(), absl::OkStatus());
}

absl::StatusOr<v1::PlanRevisionResponse> FakePlanSource::PlanRevision(const v1::PlanRevisionRequest& r) {
  ferry::MutexLock l(&mu_);
  revisions_.push_back(r);
  if (!revision_plan_) return absl::UnavailableError("planner down");
  v1::PlanRevisionResponse resp;
  *resp.mutable_plan() = *revision_plan_;
  return resp;
}

absl::Status FakePlanSource::Refresh(const v1::RefreshApplicationRequest&) { return absl::OkStatus(); }

std::vector<v1::AcknowledgePlanRequest> FakePlanSource::acks() {
  ferry::MutexLock l(&mu_);
  return acks_;
}
std::vector<v1::ReportPlanResultRequest> FakePlanSource::results() {
  ferry::MutexLock l(&mu_);
  return results_;
}
std::vector<v1::PlanRevisionRequest> FakePlanSource::revisions() {
  ferry::MutexLock l(&mu_);
  return revisions_;
}
void FakePlanSource::set_hold(bool hold) {
  ferry::MutexLock l(&mu_);
  hold_ = hold;
}
void FakePlanSource::set_revision_plan(const v1::Plan& plan) {
  ferry::MutexLock l(&mu_);
  revision_plan_ = plan;
}

}  // namespace ferry::deployer::testing
