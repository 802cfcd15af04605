#pragma once

#include "ferry/v1/planner.grpc.pb.h"

namespace ferry::planner {

// gRPC handlers of ferry.v1.Planner. Every RPC returns UNIMPLEMENTED until
// the planner issue lands; the contract is served and visible over reflection.
class PlannerService final : public v1::Planner::Service {};

}  // namespace ferry::planner
