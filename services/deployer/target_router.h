#pragma once

#include "services/deployer/target.h"

namespace ferry::deployer {

// Hands each DeployTarget to the factory of its kind: host, Kubernetes,
// Ansible or Terraform (a null factory: that kind is refused). Thread-safe as its
// factories are.
class TargetRouter final : public TargetFactory {
 public:
  TargetRouter(TargetFactory* host, TargetFactory* kubernetes, TargetFactory* ansible = nullptr,
               TargetFactory* terraform = nullptr)
      : host_(host), kubernetes_(kubernetes), ansible_(ansible), terraform_(terraform) {}
  absl::StatusOr<Target*> For(const v1::DeployTarget& target) override;

 private:
  TargetFactory* const host_;
  TargetFactory* const kubernetes_;
  TargetFactory* const ansible_;
  TargetFactory* const terraform_;
};

}  // namespace ferry::deployer
