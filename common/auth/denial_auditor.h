#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/auth/access_control.h"
#include "common/clock/clock.h"
#include "common/concurrency/mutex.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::auth {

// Records refusals as ACCESS_DENIED audit events, rate-limited per principal
// so that a caller hammering a port leaves a few events, not one per call:
// a principal's first refusal is audited at once; later ones within
// `interval` are counted and carried by the next event ("count" refusals
// since "since"). Every refusal is counted in
// ferry_access_denied_total{rpc, code} whatever the limit. At most
// `max_principals` are tracked; past that the oldest are forgotten (their
// next refusal is audited at once). Thread-safe.
class DenialAuditor : public DenialRecorder {
 public:
  using EventSink = std::function<absl::Status(v1::Event)>;

  DenialAuditor(std::string service, EventSink sink, const Clock* clock, prometheus::Registry* registry,
                absl::Duration interval = absl::Seconds(10), size_t max_principals = 10000);

  void Denied(const Principal& who, const std::string& rpc, const absl::Status& refusal) override;

 private:
  struct Seen {
    absl::Time last_audit;
    int64_t pending = 0;
    absl::Time pending_since;
  };

  const std::string service_;
  const EventSink sink_;
  const Clock* clock_;
  const absl::Duration interval_;
  const size_t max_principals_;
  prometheus::Family<prometheus::Counter>* denied_ = nullptr;
  Mutex mu_;
  std::map<std::string, Seen> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::auth
