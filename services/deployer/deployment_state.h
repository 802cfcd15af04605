#pragma once

#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// A deployment that will not change again: succeeded, failed or rolled back.
inline bool IsTerminal(v1::DeploymentState s) {
  return s == v1::DEPLOYMENT_STATE_SUCCEEDED || s == v1::DEPLOYMENT_STATE_FAILED ||
         s == v1::DEPLOYMENT_STATE_ROLLED_BACK;
}

}  // namespace ferry::deployer
