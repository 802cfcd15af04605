#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/planner.pb.h"
#include "services/deployer/host/workload_policy.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer::testing {

// A Process running tests/deployer/testdata/server.py, answering with `version`.
nlohmann::json ServerProcess(const std::string& name, const std::string& version, int replicas,
                             const std::vector<std::pair<std::string, std::string>>& extra_env = {});
nlohmann::json ConfigFile(const std::string& name, const std::string& path, const std::string& content);

struct PlanOptions {
  std::string root;
  std::string sha = std::string(40, 'a');
  absl::Duration health_timeout = absl::Seconds(20);
  bool self_heal = false;
  bool prune = true;
  bool automatic = true;
};

// A released plan (FULL view) deploying `objects` to app "web-app", env "dev".
v1::Plan MakePlan(const std::string& id, const std::vector<nlohmann::json>& objects, const PlanOptions& options);

// Stops (SIGKILL) every process recorded under `root` and returns how many
// were still running.
int KillAllUnder(const std::string& root);
// Processes on this machine started by a deployer for `root`.
int CountProcessesUnder(const std::string& root);

// PlanSource fake: acknowledges everything (unless told otherwise) and
// records results. Watch blocks until Cancel.
class FakePlanSource final : public PlanSource {
 public:
  absl::Status Watch(const std::string& cursor, const PlanCallback& on_plan) override;
  void Cancel() override;
  absl::StatusOr<v1::AcknowledgePlanResponse> Acknowledge(const v1::AcknowledgePlanRequest& request) override;
  absl::Status ReportResult(const v1::ReportPlanResultRequest& request) override;
  absl::StatusOr<std::vector<absl::Status>> ReportResults(
      const std::vector<v1::ReportPlanResultRequest>& requests) override;
  absl::StatusOr<v1::PlanRevisionResponse> PlanRevision(const v1::PlanRevisionRequest& request) override;
  absl::Status Refresh(const v1::RefreshApplicationRequest& request) override;

  std::vector<v1::AcknowledgePlanRequest> acks();
  std::vector<v1::ReportPlanResultRequest> results();
  std::vector<v1::PlanRevisionRequest> revisions();
  // PlanRevision answers with this plan (UNAVAILABLE when unset).
  void set_revision_plan(const v1::Plan& plan);
  // Acknowledge answers proceed = false (the planner holds the plan).
  void set_hold(bool hold);

 private:
  ferry::Mutex mu_;
  ferry::CondVar cv_;  // Signalled on Cancel.
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::AcknowledgePlanRequest> acks_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ReportPlanResultRequest> results_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::PlanRevisionRequest> revisions_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::Plan> revision_plan_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
};

// The deployer's workload policy for tests written before runAs: as root
// (CI), environments without runAs run their workloads as the test's uid
// (--insecure-workloads-as-root).
inline host::WorkloadPolicyOptions WorkloadsAsTheTestsUid() {
  host::WorkloadPolicyOptions o;
  o.root_deployer_runs_workloads_as_itself = true;
  return o;
}

}  // namespace ferry::deployer::testing
