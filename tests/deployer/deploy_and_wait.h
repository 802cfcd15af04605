#pragma once

// Hands `plan` to a Deployer the way its plan consumer would and waits until
// the deployment (and any rollback it started) has finished; returns the
// deployment with its steps, or an empty one when nothing was recorded.

#include <gtest/gtest.h>

#include <string>

#include "services/deployer/deployer.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer::testing {

inline v1::Deployment DeployAndWait(Deployer& deployer, DeploymentStore& store, const v1::Plan& plan) {
  absl::StatusOr<std::string> id = deployer.HandlePlan(plan);
  EXPECT_TRUE(id.ok()) << id.status();
  deployer.WaitIdle();
  if (!id.ok() || id->empty()) return v1::Deployment();
  absl::StatusOr<v1::Deployment> d = store.Get(*id, true);
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : v1::Deployment();
}

}  // namespace ferry::deployer::testing
