#include "services/planner/plan_view.h"

namespace ferry::planner {

void ToBasicView(v1::Plan& plan) {
  plan.clear_manifests();
  for (auto& a : *plan.mutable_actions()) {
    a.clear_json_patch();
    a.clear_unified_diff();
  }
}

}  // namespace ferry::planner
