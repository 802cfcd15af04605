#include "services/planner/plan_notify_listener.h"

namespace ferry::planner {

PlanNotifyListener::~PlanNotifyListener() { Stop(); }

void PlanNotifyListener::Start() { listener_.Start(); }

void PlanNotifyListener::Stop() { listener_.Stop(); }

}  // namespace ferry::planner
