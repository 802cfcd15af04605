#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/host/host_objects.h"
#include "services/deployer/host/process_manager.h"
#include "services/deployer/host/root_policy.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/target.h"

namespace ferry::deployer::host {

// The host target: deploys `ferry.dev/v1` Process and ConfigFile objects
// onto the machine the deployer runs on, under one environment root
// directory. Any other apiVersion or kind is refused by Prepare, before
// anything changes. Thread-safe.
//
// Layout under the root: ConfigFiles at their spec.path; pid files in
// .ferry/run/<app>/<process>/; program output in logs/<app>/<process>/.
class HostTarget final : public Target {
 public:
  explicit HostTarget(std::string root_dir, WorkloadIdentity who = {});

  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  absl::StatusOr<DryRunResult> DryRun(const AppScope&, const TargetObject&) override {
    return absl::UnimplementedError("the host target has no dry run");
  }

  const std::string& root() const { return root_; }
  ProcessManager& processes() { return processes_; }

 private:
  absl::Status ApplyFile(const AppScope& app, const HostObject& obj);
  ObservedObject ObserveFile(const HostObject* applied, const std::string& name);

  const std::string root_;
  const WorkloadIdentity who_;
  ProcessManager processes_;
  std::atomic<int> stage_counter_{0};
};

// One HostTarget per root directory, each root checked by `roots` first
// (resolved; a refused root fails the plan or deployment). Thread-safe.
class HostTargetFactory final : public TargetFactory {
 public:
  explicit HostTargetFactory(RootPolicy roots = RootPolicy(), WorkloadIdentity who = {})
      : roots_(std::move(roots)), who_(std::move(who)) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  const RootPolicy roots_;
  const WorkloadIdentity who_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<HostTarget>> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::host
