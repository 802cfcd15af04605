#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer {

// Drift settings: the effective settings of an (application, environment)
// (its own over the global ones over the defaults) and their updates.
// Thread-safe.
class DriftPolicy {
 public:
  // `default_interval`: the observation interval when none is stored.
  DriftPolicy(DriftStore* store, absl::Duration default_interval);

  // The effective settings; both ids empty for the global ones. A failed
  // read is an error (defaults would heal an application whose operator
  // turned healing off).
  absl::StatusOr<v1::DriftSettings> Effective(const std::string& app, const std::string& env);
  // The global settings as stored (nullopt: none stored), for EffectiveWith.
  absl::StatusOr<std::optional<v1::DriftSettings>> StoredGlobal();
  // Effective(app, env) with the global settings read already (a drift pass
  // reads them once, not once per application).
  absl::StatusOr<v1::DriftSettings> EffectiveWith(const std::optional<v1::DriftSettings>& global,
                                                  const std::string& app, const std::string& env);
  absl::Duration default_interval() const { return default_interval_; }
  // The effective settings of (app, env) from what is stored (nothing read).
  v1::DriftSettings Merge(const std::optional<v1::DriftSettings>& global, const std::optional<v1::DriftSettings>& own,
                          const std::string& app, const std::string& env) const;
  // Merge's interval and disabled, without building the settings: all a
  // drift check of an application in sync needs (building them was 7% of
  // the deployer's idle CPU at 10,000 applications; issue #23).
  absl::Duration MergedInterval(const std::optional<v1::DriftSettings>& global,
                                const std::optional<v1::DriftSettings>& own) const;
  static bool MergedDisabled(const std::optional<v1::DriftSettings>& global,
                             const std::optional<v1::DriftSettings>& own);
  // Effective(), after checking that both ids or none are given.
  absl::StatusOr<v1::DriftSettings> Get(const std::string& app, const std::string& env);
  // Saves the fields named by the update mask (all when empty) and returns
  // the effective settings.
  absl::StatusOr<v1::DriftSettings> Update(const v1::UpdateDriftSettingsRequest& req);

 private:
  DriftStore* const store_;
  const absl::Duration default_interval_;
};

absl::Duration FromProtoDuration(const google::protobuf::Duration& d);
google::protobuf::Duration ToProtoDuration(absl::Duration d);

}  // namespace ferry::deployer
