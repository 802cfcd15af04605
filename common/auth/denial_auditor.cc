#include "common/auth/denial_auditor.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"

namespace ferry::auth {

DenialAuditor::DenialAuditor(std::string service, EventSink sink, const Clock* clock, prometheus::Registry* registry,
                             absl::Duration interval, size_t max_principals)
    : service_(std::move(service)),
      sink_(std::move(sink)),
      clock_(clock),
      interval_(interval),
      max_principals_(max_principals) {
  if (registry != nullptr) {
    denied_ = &prometheus::BuildCounter()
                   .Name("ferry_access_denied_total")
                   .Help("Calls refused by access control, by RPC and status code.")
                   .Register(*registry);
  }
}

void DenialAuditor::Denied(const Principal& who, const std::string& rpc, const absl::Status& refusal) {
  const char* code = absl::IsUnauthenticated(refusal) ? "UNAUTHENTICATED" : "PERMISSION_DENIED";
  if (denied_ != nullptr) denied_->Add({{"rpc", rpc}, {"code", code}}).Increment();
  const std::string subject = SubjectOf(who);
  absl::Time now = clock_->Now();
  int64_t count = 1;
  absl::Time since = now;
  {
    MutexLock l(&mu_);
    auto it = seen_.find(subject);
    if (it == seen_.end()) {
      if (seen_.size() >= max_principals_) {
        // Forget the principal audited longest ago.
        auto oldest = seen_.begin();
        for (auto i = seen_.begin(); i != seen_.end(); ++i) {
          if (i->second.last_audit < oldest->second.last_audit) oldest = i;
        }
        seen_.erase(oldest);
      }
      seen_[subject] = Seen{.last_audit = now, .pending = 0, .pending_since = now};
    } else if (now - it->second.last_audit < interval_) {
      if (it->second.pending++ == 0) it->second.pending_since = now;
      return;
    } else {
      count += it->second.pending;
      if (it->second.pending > 0) since = it->second.pending_since;
      it->second = Seen{.last_audit = now, .pending = 0, .pending_since = now};
    }
  }
  v1::Event event;
  event.set_action(v1::AUDIT_ACTION_ACCESS_DENIED);
  *event.mutable_actor() = ActorOf(who);
  event.set_message(count == 1 ? absl::StrCat(subject, " refused ", rpc, ": ", refusal.message())
                               : absl::StrCat(subject, " refused ", count, " times since ",
                                              absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", since, absl::UTCTimeZone()),
                                              "; latest ", rpc, ": ", refusal.message()));
  auto& f = *event.mutable_details()->mutable_fields();
  f["rpc"].set_string_value(rpc);
  f["code"].set_string_value(code);
  f["reason"].set_string_value(std::string(refusal.message()));
  f["principal"].set_string_value(subject);
  if (!who.method.empty()) f["method"].set_string_value(who.method);
  f["count"].set_number_value(static_cast<double>(count));
  event.set_idempotency_key(absl::StrCat("access-denied:", service_, ":", subject, ":", absl::ToUnixNanos(now)));
  absl::Status recorded = sink_ ? sink_(std::move(event)) : absl::OkStatus();
  logging::Warn("access denied", {{"principal", subject}, {"rpc", rpc}, {"code", code},
                                  {"reason", std::string(refusal.message())}, {"count", count},
                                  {"audited", recorded.ok()}});
}

}  // namespace ferry::auth
