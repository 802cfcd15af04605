#pragma once

#include "services/deployer/target.h"

namespace ferry::deployer {

// Hands each DeployTarget to the factory of its kind: host or Kubernetes.
// Thread-safe as its factories are.
class TargetRouter final : public TargetFactory {
 public:
  TargetRouter(TargetFactory* host, TargetFactory* kubernetes) : host_(host), kubernetes_(kubernetes) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  TargetFactory* const host_;
  TargetFactory* const kubernetes_;
};

}  // namespace ferry::deployer
