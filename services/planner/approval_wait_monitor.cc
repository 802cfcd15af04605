#include "services/planner/approval_wait_monitor.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "common/logging/logger.h"

namespace ferry::planner {

namespace {

constexpr int kPage = 200;

absl::Time CreateTime(const v1::Plan& plan) {
  return absl::FromUnixSeconds(plan.create_time().seconds()) + absl::Nanoseconds(plan.create_time().nanos());
}

}  // namespace

ApprovalWaitMonitor::ApprovalWaitMonitor(PlanStore* plans, PlannerMetrics* metrics, const WaitableClock* clock,
                                         absl::Duration interval)
    : plans_(plans),
      metrics_(metrics),
      clock_(clock),
      interval_(interval),
      loop_("approval-wait-monitor", [this] { return Step(); }, concurrency::LoopOptions{}, clock) {}

absl::Status ApprovalWaitMonitor::MeasureOnce() {
  const absl::Time now = clock_->Now();
  std::map<std::pair<std::string, std::string>, PlannerMetrics::Waiting> waiting;
  PlanFilter filter;
  filter.states = {v1::PLAN_STATE_PENDING};
  filter.limit = kPage;
  while (true) {
    absl::StatusOr<PlanPage> page = plans_->ListPlans(filter);
    if (!page.ok()) return page.status();
    for (const v1::Plan& p : page->plans) {
      if (p.preview()) continue;
      PlannerMetrics::Waiting& w = waiting[{p.application_id(), p.environment_id()}];
      ++w.plans;
      w.oldest_seconds = std::max(w.oldest_seconds, absl::ToDoubleSeconds(std::max(absl::ZeroDuration(), now - CreateTime(p))));
    }
    if (!page->more) break;
    filter.before_seq = page->last_seq;
  }
  metrics_->AwaitingApproval(waiting);
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ApprovalWaitMonitor::Step() {
  absl::Status s = MeasureOnce();
  if (!s.ok()) logging::Warn("measuring plans awaiting approval failed", {{"error", s.ToString()}});
  return interval_;
}

}  // namespace ferry::planner
