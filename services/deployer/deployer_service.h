#pragma once

#include "ferry/v1/deployer.grpc.pb.h"

namespace ferry::deployer {

// gRPC handlers of ferry.v1.Deployer. Every RPC returns UNIMPLEMENTED until
// the deployer issue lands; the contract is served and visible over reflection.
class DeployerService final : public v1::Deployer::Service {};

}  // namespace ferry::deployer
