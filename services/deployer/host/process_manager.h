#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/host/host_objects.h"
#include "services/deployer/host/workload_identity.h"
#include "services/deployer/host/detached_process.h"
#include "services/deployer/target.h"

namespace ferry::deployer::host {

// One running (or once running) instance of a Process, as recorded in its
// pid file `<root>/.ferry/run/<app>/<process>/<id>.json`.
struct Instance {
  std::string id;
  ProcessIdentity identity;  // pid 0 until the program was started.
  std::string spec_hash;
  std::map<std::string, int> ports;
  std::string log_path;
  std::string file;  // The pid file.
  nlohmann::json spec;  // The Process spec it runs.
};

// Supervises the Process objects of one environment root. All state lives in
// pid files plus a start-time check, so a new ProcessManager (after a
// deployer restart) re-adopts running instances without restarting them,
// and never signals a pid that now belongs to another program. Thread-safe;
// operations on one process are serialised.
class ProcessManager {
 public:
  explicit ProcessManager(std::string root, WorkloadIdentity who = {});

  // Rolls `obj` out: keeps instances already running its spec, replaces the
  // others one at a time (a new instance must be healthy before the next old
  // one stops), then stops surplus ones. DEADLINE_EXCEEDED or
  // FAILED_PRECONDITION (the new instance exited) leave the remaining old
  // instances running.
  absl::Status Apply(const std::string& app, const HostObject& obj, absl::Time deadline,
                     const std::atomic<bool>* cancel = nullptr);
  // Stops every instance and forgets the process.
  absl::Status Delete(const std::string& app, const std::string& name);
  ObservedObject Observe(const std::string& app, const std::string& name, const HostObject* applied);
  std::pair<v1::HealthStatus, std::string> Health(const std::string& app, const HostObject& applied);
  // Sends `signal` to every live instance. NOT_FOUND when none runs.
  absl::Status Signal(const std::string& app, const std::string& name, int signal);
  // Live instances, as recorded in the pid files.
  std::vector<Instance> LiveInstances(const std::string& app, const std::string& name);

 private:
  std::string Dir(const std::string& app, const std::string& name) const;
  // The spec hash of this manager's instances: the spec's, plus whom they run
  // as when that is not the deployer's own uid.
  std::string InstanceHash(const nlohmann::json& spec) const;
  // The lock that serialises operations on one process.
  ferry::Mutex& LockFor(const std::string& app, const std::string& name);
  std::vector<Instance> Load(const std::string& app, const std::string& name);
  absl::StatusOr<Instance> Start(const std::string& app, const HostObject& obj, const std::string& hash);
  // Waits for the first passing probe; counts the probes run in `*probes`.
  absl::Status WaitHealthy(const Instance& inst, const ProcessSpec& spec, absl::Time deadline,
                           const std::atomic<bool>* cancel, int* probes);
  std::pair<bool, std::string> Probe(const Instance& inst, const ProcessSpec& spec);
  void Stop(const Instance& inst);
  void CapLog(const Instance& inst, int64_t max_bytes);

  const std::string root_;
  const WorkloadIdentity who_;
  ferry::Mutex mu_;
  std::map<std::string, std::unique_ptr<ferry::Mutex>> locks_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> failures_ ABSL_GUARDED_BY(mu_);  // Consecutive probe failures by instance file.
  uint64_t counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ferry::deployer::host
