#pragma once

#include "common/postgres/connection_pool.h"
#include "common/postgres/notification_listener.h"
#include "services/planner/plan_notifier.h"

namespace ferry::planner {

// One job: LISTENing on the `planner_plans` PostgreSQL channel (NOTIFYed by
// PostgresPlannerStore when a plan is released) and waking the local
// PlanNotifier, so that WatchApprovedPlans streams served by any replica
// learn of plans released by another at once. Thread-safe.
class PlanNotifyListener {
 public:
  static constexpr char kChannel[] = "planner_plans";
  PlanNotifyListener(postgres::ConnectionPool* pool, PlanNotifier* notifier)
      : listener_(pool, kChannel, [notifier] { notifier->Notify(); }) {}
  ~PlanNotifyListener();
  void Start();
  void Stop();

 private:
  postgres::NotificationListener listener_;
};

}  // namespace ferry::planner
