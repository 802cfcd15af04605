#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// Identity of a managed object: (group, kind, namespace, name). Generic: no
// target-specific meaning.
struct ObjectKey {
  std::string group;
  std::string kind;
  std::string namespace_;
  std::string name;

  // "group/kind/namespace/name", for logs, messages and idempotency keys.
  std::string ToString() const;
  static ObjectKey FromProto(const v1::ObjectRef& ref);
  v1::ObjectRef ToProto() const;
  friend bool operator<(const ObjectKey& a, const ObjectKey& b) {
    return std::tie(a.group, a.kind, a.namespace_, a.name) < std::tie(b.group, b.kind, b.namespace_, b.name);
  }
  friend bool operator==(const ObjectKey& a, const ObjectKey& b) {
    return std::tie(a.group, a.kind, a.namespace_, a.name) == std::tie(b.group, b.kind, b.namespace_, b.name);
  }
};

// One object as desired or as last applied: the full JSON document plus
// where it came from.
struct TargetObject {
  ObjectKey key;
  std::string json;         // Full object (apiVersion, kind, metadata, spec).
  std::string source_path;  // Repository path of the file it came from; for messages.
  int wave = 0;
};

// The application an operation belongs to. Targets use it to keep the
// objects of different applications apart.
struct AppScope {
  std::string application_id;
  std::string environment_id;
  // The application's sync.forceConflicts: a target with field ownership
  // (Kubernetes server-side apply) takes over fields other managers own.
  bool force_conflicts = false;
};

// One object as the target sees it now.
struct ObservedObject {
  bool exists = false;
  std::string live_json;  // Observed object as JSON; empty when missing.
  v1::HealthStatus health = v1::HEALTH_STATUS_UNKNOWN;
  std::string health_message;
  v1::DriftStatus drift = v1::DRIFT_STATUS_UNKNOWN;  // Against the applied object given to Observe.
  std::string drift_message;
  // The object's own policy asks for drift of this sort to be repaired even
  // without the application's selfHeal (e.g. a Process restart policy).
  bool repair_by_policy = false;
};

// What applying an object now would make of it, without applying it.
struct DryRunResult {
  std::string json;      // The object as the target would store it; for diffs.
  std::string conflict;  // Fields other managers own (the apply would fail unless forced); empty if none.
};

// One result inside an Apply that is a step of its own in the deployment
// (an Ansible task on one host): object, outcome and message.
struct TaskStep {
  ObjectKey object;  // e.g. ansible.ferry.dev/AnsibleTask/<host>/<task>
  v1::ObjectAction action = v1::OBJECT_ACTION_NOOP;  // UPDATE when it changed something
  v1::StepResult result = v1::STEP_RESULT_SUCCEEDED;
  std::string message;
};

// Reads a file of the application's folder at the revision being deployed.
// `path` is relative to the folder of the manifest that refers to it.
using FileFetcher = std::function<absl::StatusOr<std::string>(const std::string& source_path, const std::string& path)>;

// A place objects are deployed to: one implementation per kind of
// environment (HostTarget first; a Kubernetes target later). Implementations
// are thread-safe; operations on different applications may run
// concurrently, operations on one application are serialised by the caller.
class Target {
 public:
  virtual ~Target() = default;

  // Checks every object and resolves what it refers to (e.g. file contents),
  // returning the objects exactly as they will be applied and recorded.
  // Changes nothing. INVALID_ARGUMENT names the source file, the object and
  // the field (unknown kind, path escaping the root, bad value).
  virtual absl::StatusOr<std::vector<TargetObject>> Prepare(const AppScope& app, std::vector<TargetObject> objects,
                                                           const FileFetcher& fetch) = 0;

  // Creates or updates `desired` (a result of Prepare), waiting for it to be
  // healthy where an update must keep it available, until `deadline`.
  // `previous` is the object as last applied, or nullptr. `cancel` (may be
  // null) becoming true ends a wait early with ABORTED. Errors:
  // DEADLINE_EXCEEDED (health did not arrive), FAILED_PRECONDITION (a check
  // such as a validate command refused it; nothing went live), INTERNAL.
  virtual absl::Status Apply(const AppScope& app, const TargetObject& desired, const TargetObject* previous,
                             absl::Time deadline, const std::atomic<bool>* cancel) = 0;

  // Deletes an object as last applied. Deleting a missing object is OK.
  virtual absl::Status Delete(const AppScope& app, const TargetObject& applied, absl::Time deadline) = 0;

  // Observes one object. `applied` is the object as last applied (drift is
  // judged against it), or nullptr for an object never applied.
  virtual ObservedObject Observe(const AppScope& app, const ObjectKey& key, const TargetObject* applied) = 0;

  // Observe for a look that needs drift and health only (the drift pass's
  // test of an application in sync): a target may leave live_json empty
  // rather than build it. Everything else is as Observe gives it.
  virtual ObservedObject ObserveStatus(const AppScope& app, const ObjectKey& key, const TargetObject* applied) {
    return Observe(app, key, applied);
  }

  // Health of an applied object now (HEALTHY, PROGRESSING, DEGRADED,
  // MISSING), with a message.
  virtual std::pair<v1::HealthStatus, std::string> Health(const AppScope& app, const TargetObject& applied) = 0;
  // Whether an object that Health calls DEGRADED has failed for good, so
  // that waiting out the health timeout would change nothing (a Deployment
  // past its own progress deadline, a failed Job): its wave fails at once.
  // Targets that cannot tell answer false, and the wave waits.
  virtual bool FailedForGood(const AppScope& app, const TargetObject& applied) {
    (void)app;
    (void)applied;
    return false;
  }

  // The object as it would be stored if `desired` (a rendered object, before
  // Prepare) were applied now, and any conflict that apply would meet.
  // Changes nothing. UNIMPLEMENTED for targets that cannot tell (the host
  // target: its objects have no server-side defaults).
  virtual absl::StatusOr<DryRunResult> DryRun(const AppScope& app, const TargetObject& desired) = 0;
  // The results inside the last Apply of `app` that are steps of their own
  // (an Ansible run's tasks), in order, whether the Apply succeeded or not;
  // cleared by the call. Targets whose Apply is one step return none.
  virtual std::vector<TaskStep> TakeTaskSteps(const AppScope& app) {
    (void)app;
    return {};
  }
  // Whether DryRun is this target's plan (Terraform: `terraform plan`), so
  // that a failed one must fail the Ferry plan (LiveObject.dry_run_error)
  // rather than be dropped, as a Kubernetes dry run that fails is.
  virtual bool DryRunIsThePlan() const { return false; }
  // The digest of the saved plan the last Apply of `app` ran or tried to
  // run (Terraform: sha256:<hex> of the plan file), for its step and audit
  // event; "" when none. Cleared by the call.
  virtual std::string TakeAppliedPlanDigest(const AppScope& app) {
    (void)app;
    return "";
  }
  // Whether someone else changed an object of `app` since the last call (a
  // target that watches its objects knows; others answer false and are
  // checked by the periodic drift pass only). Clears the mark.
  virtual bool TakeChanged(const AppScope& app) {
    (void)app;
    return false;
  }
};

// Gives the Target for an environment's DeployTarget. Thread-safe; returned
// targets live as long as the factory.
class TargetFactory {
 public:
  virtual ~TargetFactory() = default;
  // INVALID_ARGUMENT for a missing or unsupported target configuration.
  virtual absl::StatusOr<Target*> For(const v1::DeployTarget& target) = 0;
};

}  // namespace ferry::deployer
