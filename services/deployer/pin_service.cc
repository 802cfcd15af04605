#include "services/deployer/pin_service.h"

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "services/deployer/app_ids.h"
#include "services/deployer/audit_events.h"

namespace ferry::deployer {

absl::StatusOr<v1::PinState> PinService::Pin(const v1::PinRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  std::string sha = req.sha();
  if (sha.empty()) {
    absl::StatusOr<std::optional<ManagedApp>> m = records_->GetManagedApp(req.application_id(), req.environment_id());
    if (!m.ok()) return m.status();
    if (!m->has_value() || (*m)->live_deployment_id.empty()) {
      return absl::FailedPreconditionError("sha: the application has no live revision to pin; give a sha");
    }
    absl::StatusOr<v1::Deployment> live = records_->Get((*m)->live_deployment_id, false);
    if (!live.ok()) return live.status();
    sha = live->revision().sha();
  }
  v1::PinState pin;
  pin.set_application_id(req.application_id());
  pin.set_environment_id(req.environment_id());
  pin.set_pinned(true);
  pin.set_sha(sha);
  *pin.mutable_actor() = req.actor();
  pin.set_reason(req.reason());
  *pin.mutable_time() = ToTimestamp(clock_->Now());
  absl::Status s = pins_->SavePin(
      pin, {AppEvent(v1::AUDIT_ACTION_PINNED, req.application_id(), req.environment_id(), req.actor(),
                     absl::StrCat("pinned at ", sha, req.reason().empty() ? "" : ": " + req.reason()),
                     absl::StrCat("pin/", AppKey(req.application_id(), req.environment_id()), "/",
                                  absl::ToUnixNanos(clock_->Now())),
                     {{"sha", sha}, {"reason", req.reason()}})});
  if (!s.ok()) return s;
  return pin;
}

absl::StatusOr<v1::PinState> PinService::Unpin(const v1::UnpinRequest& req) {
  absl::Status ids = RequireIds(req.application_id(), req.environment_id());
  if (!ids.ok()) return ids;
  if (req.actor().id().empty()) return absl::InvalidArgumentError("actor.id is required");
  absl::StatusOr<v1::PinState> pin = pins_->GetPin(req.application_id(), req.environment_id());
  if (!pin.ok()) return pin.status();
  pin->set_pinned(false);
  *pin->mutable_actor() = req.actor();
  pin->set_reason(req.reason());
  *pin->mutable_time() = ToTimestamp(clock_->Now());
  absl::Status s = pins_->SavePin(
      *pin, {AppEvent(v1::AUDIT_ACTION_UNPINNED, req.application_id(), req.environment_id(), req.actor(),
                      absl::StrCat("unpinned", req.reason().empty() ? "" : ": " + req.reason()),
                      absl::StrCat("unpin/", AppKey(req.application_id(), req.environment_id()), "/",
                                   absl::ToUnixNanos(clock_->Now())),
                      {{"sha", pin->sha()}, {"reason", req.reason()}})});
  if (!s.ok()) return s;
  if (plans_ != nullptr) {
    v1::RefreshApplicationRequest r;
    r.set_application_id(req.application_id());
    r.set_environment_id(req.environment_id());
    *r.mutable_actor() = req.actor();
    absl::Status refreshed = plans_->Refresh(r);
    if (!refreshed.ok()) logging::Info("planner refresh after unpin failed", {{"error", refreshed.ToString()}});
  }
  return *pin;
}

}  // namespace ferry::deployer
