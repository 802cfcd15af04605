#pragma once

#include "absl/status/statusor.h"
#include "ferry/v1/deployer.pb.h"
#include "services/deployer/deployment_store.h"

namespace ferry::deployer {

// The per-object diff between the manifests two recorded deployments
// applied (their executed plans' manifests, as stored with each deployment;
// automatic rollbacks and self-heals included), keyed by object identity.
// Secret values are masked (digests) before they are compared or shown.
class DeploymentDiffer {
 public:
  explicit DeploymentDiffer(DeploymentRecords* records) : records_(records) {}

  absl::StatusOr<v1::DiffDeploymentsResponse> Diff(const v1::DiffDeploymentsRequest& req);

 private:
  DeploymentRecords* const records_;
};

}  // namespace ferry::deployer
