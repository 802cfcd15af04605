#include "services/deployer/drift_policy.h"

#include <google/protobuf/util/time_util.h>

#include <vector>

#include "absl/strings/str_cat.h"

#include "common/status/status_macros.h"

namespace ferry::deployer {

absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  return google::protobuf::util::TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

DriftPolicy::DriftPolicy(DriftStore* store, absl::Duration default_interval)
    : store_(store), default_interval_(default_interval) {}

absl::StatusOr<v1::DriftSettings> DriftPolicy::Effective(const std::string& app, const std::string& env) {
  ASSIGN_OR_RETURN(std::optional<v1::DriftSettings> global, StoredGlobal());
  return EffectiveWith(global, app, env);
}

absl::StatusOr<std::optional<v1::DriftSettings>> DriftPolicy::StoredGlobal() {
  // Nothing stored means the defaults; a failed read is an error (defaults
  // would heal an application whose operator turned healing off).
  absl::StatusOr<v1::DriftSettings> global = store_->GetDriftSettings("", "");
  if (global.ok()) return std::optional<v1::DriftSettings>(*std::move(global));
  if (absl::IsNotFound(global.status())) return std::optional<v1::DriftSettings>();
  return global.status();
}

absl::StatusOr<v1::DriftSettings> DriftPolicy::EffectiveWith(const std::optional<v1::DriftSettings>& global,
                                                             const std::string& app, const std::string& env) {
  std::optional<v1::DriftSettings> own;
  if (!app.empty() || !env.empty()) {
    absl::StatusOr<v1::DriftSettings> read = store_->GetDriftSettings(app, env);
    if (!read.ok() && !absl::IsNotFound(read.status())) return read.status();
    if (read.ok()) own = *std::move(read);
  }
  return Merge(global, own, app, env);
}

v1::DriftSettings DriftPolicy::Merge(const std::optional<v1::DriftSettings>& global,
                                     const std::optional<v1::DriftSettings>& own, const std::string& app,
                                     const std::string& env) const {
  v1::DriftSettings out;
  if (global) out = *global;
  if (own) {
    if (own->disabled()) out.set_disabled(true);
    if (own->has_interval()) *out.mutable_interval() = own->interval();
    if (own->has_heal_backoff()) *out.mutable_heal_backoff() = own->heal_backoff();
  }
  out.set_application_id(app);
  out.set_environment_id(env);
  if (!out.has_interval()) *out.mutable_interval() = ToProtoDuration(default_interval_);
  if (!out.heal_backoff().has_initial()) *out.mutable_heal_backoff()->mutable_initial() = ToProtoDuration(absl::Seconds(5));
  if (!out.heal_backoff().has_max()) *out.mutable_heal_backoff()->mutable_max() = ToProtoDuration(absl::Minutes(5));
  if (out.heal_backoff().factor() <= 0) out.mutable_heal_backoff()->set_factor(2);
  return out;
}

absl::Duration DriftPolicy::MergedInterval(const std::optional<v1::DriftSettings>& global,
                                           const std::optional<v1::DriftSettings>& own) const {
  if (own && own->has_interval()) return FromProtoDuration(own->interval());
  if (global && global->has_interval()) return FromProtoDuration(global->interval());
  return default_interval_;
}

bool DriftPolicy::MergedDisabled(const std::optional<v1::DriftSettings>& global,
                                 const std::optional<v1::DriftSettings>& own) {
  return (global && global->disabled()) || (own && own->disabled());
}

absl::StatusOr<v1::DriftSettings> DriftPolicy::Get(const std::string& app, const std::string& env) {
  if (app.empty() != env.empty()) {
    return absl::InvalidArgumentError("application_id and environment_id must both be set or both be empty");
  }
  return Effective(app, env);
}

absl::StatusOr<v1::DriftSettings> DriftPolicy::Update(const v1::UpdateDriftSettingsRequest& req) {
  const v1::DriftSettings& in = req.settings();
  if (in.application_id().empty() != in.environment_id().empty()) {
    return absl::InvalidArgumentError(
        "settings.application_id and settings.environment_id must both be set or both be empty");
  }
  if (in.has_interval() && FromProtoDuration(in.interval()) < absl::Seconds(1)) {
    return absl::InvalidArgumentError("settings.interval must be at least 1s");
  }
  if (in.heal_backoff().factor() < 0) return absl::InvalidArgumentError("settings.heal_backoff.factor must be >= 0");
  v1::DriftSettings stored;
  absl::StatusOr<v1::DriftSettings> current = store_->GetDriftSettings(in.application_id(), in.environment_id());
  if (current.ok()) {
    stored = *current;
  } else if (!absl::IsNotFound(current.status())) {
    return current.status();  // a partial update would reset the other fields
  }
  stored.set_application_id(in.application_id());
  stored.set_environment_id(in.environment_id());
  std::vector<std::string> paths(req.update_mask().paths().begin(), req.update_mask().paths().end());
  if (paths.empty()) paths = {"disabled", "interval", "heal_backoff"};
  for (const std::string& p : paths) {
    if (p == "disabled") {
      stored.set_disabled(in.disabled());
    } else if (p == "interval") {
      *stored.mutable_interval() = in.interval();
    } else if (p == "heal_backoff") {
      *stored.mutable_heal_backoff() = in.heal_backoff();
    } else {
      return absl::InvalidArgumentError(absl::StrCat("update_mask: unknown field \"", p, "\""));
    }
  }
  absl::Status s = store_->SaveDriftSettings(stored);
  if (!s.ok()) return s;
  return Get(in.application_id(), in.environment_id());
}

}  // namespace ferry::deployer
