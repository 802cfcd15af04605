#include "services/planner/planner.h"

namespace ferry::planner {

Planner::Planner(PlannerStore* store, RepoSource* repo, LiveStateSource* live, Renderer* renderer, const Clock* clock,
                 concurrency::ChangeSignal* notifier, PlannerMetrics* metrics, int plan_concurrency,
                 const ParseLimits& parse_limits, const SyncWindowLimits& window_limits,
                 const ApprovalPolicy* approvals, CheckSource* checks, const CheckRunner* check_runner)
    : approvals_(approvals != nullptr ? approvals : &default_approvals_),
      holds_(store, store, clock, notifier, checks),
      catalog_(store, store, clock, window_limits),
      maker_(store, store, repo, live, renderer, &holds_, approvals_, clock, notifier, metrics, check_runner),
      gate_(store, store, repo, clock),
      reconciler_(store, repo, &gate_, clock,
                  [this](const std::set<std::string>& ids) {
                    return revisions_.PlanApplications(ids, v1::CommitRef(), v1::PLAN_TRIGGER_REFRESH).status();
                  },
                  parse_limits, window_limits),
      revisions_(store, store, store, repo, &reconciler_, &maker_, &holds_, &gate_, clock, plan_concurrency),
      lifecycle_(store, store, &holds_, approvals_, clock, notifier,
                 [this](const std::vector<v1::Plan>& succeeded) { return revisions_.PromoteAll(succeeded); }) {}

}  // namespace ferry::planner
