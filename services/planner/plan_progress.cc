#include "services/planner/plan_progress.h"

namespace ferry::planner {

v1::Plan ProgressOf(const v1::Plan& plan) {
  v1::Plan progress;
  SetProgress(plan, progress);
  return progress;
}

void SetProgress(const v1::Plan& progress, v1::Plan& plan) {
  plan.set_state(progress.state());
  plan.set_deployment_id(progress.deployment_id());
  if (progress.has_update_time()) {
    *plan.mutable_update_time() = progress.update_time();
  } else {
    plan.clear_update_time();
  }
  if (progress.has_failure()) {
    *plan.mutable_failure() = progress.failure();
  } else {
    plan.clear_failure();
  }
}

void MoveProgress(v1::Plan& from, v1::Plan& to) {
  to.set_state(from.state());
  from.set_state(v1::PLAN_STATE_UNSPECIFIED);
  to.mutable_deployment_id()->swap(*from.mutable_deployment_id());
  from.clear_deployment_id();
  to.clear_update_time();
  if (from.has_update_time()) to.set_allocated_update_time(from.release_update_time());
  to.clear_failure();
  if (from.has_failure()) to.set_allocated_failure(from.release_failure());
}

}  // namespace ferry::planner
