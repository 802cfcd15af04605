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
#include "services/deployer/secrets/secret_resolver.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/host/workload_policy.h"
#include "services/deployer/target.h"

namespace ferry::deployer::host {

// The host target: deploys `ferry.dev/v1` Process and ConfigFile objects
// onto the machine the deployer runs on, under one environment root
// directory. Any other apiVersion or kind is refused by Prepare, before
// anything changes. Thread-safe.
//
// Layout under the root: ConfigFiles at their spec.path; pid files in
// .ferry/run/<app>/<process>/; program output in logs/<app>/<process>/.
//
// Workloads (Process instances, validate and reload commands, exec probes)
// run as `who` (the deployer's own uid when unset). ConfigFile modes above
// 0777 are refused unless `allow_special_modes`; a file with such bits is
// then owned by `who`, so a setuid bit never means the deployer's uid.
class HostTarget final : public Target {
 public:
  // `secrets` (may be null: every secretRef is then refused) resolves the
  // application secrets of Process env and ConfigFile content.
  explicit HostTarget(std::string root_dir, WorkloadIdentity who = {}, bool allow_special_modes = false,
                      const secrets::SecretResolver* secrets = nullptr);
  // A resolver given third would silently become allow_special_modes.
  HostTarget(std::string root_dir, WorkloadIdentity who, const secrets::SecretResolver* secrets) = delete;

  absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                   const FileFetcher& fetch) override;
  absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                     absl::Time deadline, const std::atomic<bool>* cancel) override;
  absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) override;
  ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  // A ConfigFile's content is compared, not turned into live JSON.
  ObservedObject ObserveStatus(const AppScope& app, const ObjectKey& key, const TargetObject* applied) override;
  std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) override;
  absl::StatusOr<DryRunResult> DryRun(const AppScope&, const TargetObject&) override {
    return absl::UnimplementedError("the host target has no dry run");
  }

  const std::string& root() const { return root_; }
  ProcessManager& processes() { return processes_; }

 private:
  absl::Status ApplyFile(const AppScope& app, const HostObject& obj);
  ObservedObject ObserveObject(const AppScope& app, const ObjectKey& key, const TargetObject* applied, bool live);
  // `live`: fill live_json (else drift and health only).
  ObservedObject ObserveFile(const HostObject* applied, const std::string& name, bool live = true);
  // ObserveFile for a ConfigFile whose content is a secret: `live` shows the
  // keyed digest of `content`, drift compares digests.
  void ObserveSecretFile(const ConfigFileSpec& spec, const std::string& content, nlohmann::json& live,
                         ObservedObject& out);
  // Removes the file at `path` (relative to the root) through descriptors
  // opened beneath the root; a missing file is OK. Nothing outside the root
  // or in Ferry's own state is removed, whatever was swapped in meanwhile.
  absl::Status RemoveFile(const std::string& where, const std::string& path);
  // The mode a ConfigFile may have here: refusal of bits above 0777 unless
  // allow_special_modes_.
  absl::Status CheckMode(int mode) const;

  const std::string root_;
  const WorkloadIdentity who_;
  const bool allow_special_modes_;
  const secrets::SecretResolver* const secrets_;
  ProcessManager processes_;
  std::atomic<int> stage_counter_{0};
};

// One HostTarget per root directory and workload identity (and special-mode
// option), each root checked by `roots` first (resolved; a refused root
// fails the plan or deployment) and the identity decided by `workloads`
// (the environment's runAs, else --workload-user; refusals fail the plan or
// deployment). An environment whose runAs changes gets a new HostTarget, whose
// instances carry the new identity in their spec hash, so the next deployment
// replaces the old ones and drift shows them meanwhile. Thread-safe.
class HostTargetFactory final : public TargetFactory {
 public:
  // `secrets` (may be null: every secretRef is then refused) is handed to
  // every HostTarget made.
  explicit HostTargetFactory(RootPolicy roots = RootPolicy(), WorkloadPolicy workloads = WorkloadPolicy(),
                             const secrets::SecretResolver* secrets = nullptr)
      : roots_(std::move(roots)), workloads_(std::move(workloads)), secrets_(secrets) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  const RootPolicy roots_;
  const WorkloadPolicy workloads_;
  const secrets::SecretResolver* const secrets_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<HostTarget>> targets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::deployer::host
