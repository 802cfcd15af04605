#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/ansible/ansible_playbook.h"
#include "services/deployer/host/workload_policy.h"
#include "services/deployer/secrets/secret_resolver.h"
#include "services/deployer/target.h"

namespace ferry::deployer::ansible {

// The Ansible target (docs/ansible.md): an environment whose hosts an
// application's playbook configures. Its one object per application is the
// AnsiblePlaybook the planner renders (render method ansible: the folder's
// files). The seam to the planner is the generic one:
//   - DryRun runs `ansible-playbook --check --diff` of the desired object
//     here, where the inventory, keys and connection are, and answers the
//     object plus "changes": one entry per task and host that would change,
//     with its diff (and "checkFailures" / "checkError" when the check could
//     not tell); Observe answers the object as last applied with no
//     changes, so the planner's diff of the two is exactly what a run would
//     change (and a no-op plan when nothing would).
//   - Observe of an applied object runs --check of it: tasks that would
//     change are drift (the drift controller's scheduled pass).
//   - Apply runs the playbook; every task result on every host becomes a
//     deployment step (TakeTaskSteps); a failed or unreachable host fails it
//     naming the task, the host and ansible's message.
//   - Health runs the folder's health playbook (health.yml) when there is
//     one; without it, a successful run is healthy.
//   - Delete changes nothing: a playbook cannot be undone.
// Thread-safe; runs of different applications may overlap.
class AnsibleTarget final : public Target {
 public:
  AnsibleTarget(std::unique_ptr<PlaybookRunner> runner, const Clock* clock) : runner_(std::move(runner)), clock_(clock) {}

  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  absl::StatusOr<DryRunResult> DryRun(const AppScope& app, const TargetObject& desired) override;
  std::vector<TaskStep> TakeTaskSteps(const AppScope& app) override;

 private:
  absl::StatusOr<PlaybookOutcome> RunOf(const AppScope& app, const std::string& object_json, bool check, bool health,
                                        absl::Duration time_left, std::string* playbook_out) const;

  const std::unique_ptr<PlaybookRunner> runner_;
  const Clock* const clock_;
  ferry::Mutex mu_;
  std::map<std::string, std::vector<TaskStep>> steps_ ABSL_GUARDED_BY(mu_);  // by application/environment
};

// Gives each Ansible environment its target: whom runs go as (runAs, else
// --workload-user, refused as the host target refuses) and its secrets
// through the deployer's secret sources. Thread-safe.
class AnsibleTargetFactory final : public TargetFactory {
 public:
  AnsibleTargetFactory(PlaybookOptions options, host::WorkloadPolicy workloads,
                       const secrets::SecretResolver* secrets, const Clock* clock)
      : options_(std::move(options)), workloads_(std::move(workloads)), secrets_(secrets), clock_(clock) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  const PlaybookOptions options_;
  const host::WorkloadPolicy workloads_;
  const secrets::SecretResolver* const secrets_;
  const Clock* const clock_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<AnsibleTarget>> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::ansible
