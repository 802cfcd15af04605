#pragma once

#include "common/auth/access_control.h"

namespace ferry::deployer {

// The access rules of the Deployer service's RPCs (docs/security.md has the
// table). Actions on one application in one environment are scoped by the
// request's application_id and environment_id.
void AddDeployerRules(auth::AccessControl& access);

}  // namespace ferry::deployer
