#pragma once

#include "absl/base/thread_annotations.h"
#include "common/concurrency/mutex.h"
#include "services/deployer/deployment_store.h"
#include "services/deployer/plan_source.h"

namespace ferry::deployer {

// Tells the planner the terminal outcome of every deployment of a plan that
// it has not acknowledged yet (a pass's outcomes together, in one call per
// 500), and marks it reported. Thread-safe.
class OutcomeReporter {
 public:
  // `plans` may be null (then nothing is reported). With `locks` (replicas:
  // LeasedAppLocks), only outcomes of environments this replica owns are
  // reported: the replica that wrote the outcome, or the one that took its
  // environment over, so replicas do not report one outcome twice.
  OutcomeReporter(OutcomeLedger* ledger, DeploymentRecords* records, PlanSource* plans, AppLocks* locks = nullptr);

  // Reports terminal outcomes the planner has not acknowledged (one pass at
  // a time; a call during a pass makes it run again).
  void ReportOutcomes();

 private:
  // Outcomes per ReportResults call (the planner takes at most 500).
  static constexpr size_t kBatch = 500;
  void ReportOnce();

  OutcomeLedger* const ledger_;
  DeploymentRecords* const records_;
  PlanSource* const plans_;
  AppLocks* const locks_;

  ferry::Mutex mu_;
  bool reporting_ ABSL_GUARDED_BY(mu_) = false;
  bool report_again_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace ferry::deployer
