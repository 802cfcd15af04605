#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer {

// Reads of recorded deployments: one with its steps, or a filtered page.
class DeploymentHistory {
 public:
  explicit DeploymentHistory(DeploymentRecords* records) : records_(records) {}

  absl::StatusOr<v1::Deployment> GetDeployment(const std::string& id);
  absl::StatusOr<v1::ListDeploymentsResponse> ListDeployments(const v1::ListDeploymentsRequest& req);

 private:
  DeploymentRecords* const records_;
};

}  // namespace ferry::deployer
