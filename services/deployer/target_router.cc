#include "services/deployer/target_router.h"

#include "absl/strings/str_cat.h"

namespace ferry::deployer {

absl::StatusOr<Target*> TargetRouter::For(const v1::DeployTarget& target) {
  switch (target.kind()) {
    case v1::TARGET_KIND_HOST:
      return host_->For(target);
    case v1::TARGET_KIND_KUBERNETES:
      if (kubernetes_ == nullptr) return absl::InvalidArgumentError("target: this deployer has no Kubernetes target");
      return kubernetes_->For(target);
    case v1::TARGET_KIND_ANSIBLE:
      if (ansible_ == nullptr) return absl::InvalidArgumentError("target: this deployer has no Ansible target");
      return ansible_->For(target);
    case v1::TARGET_KIND_TERRAFORM:
      if (terraform_ == nullptr)
        return absl::InvalidArgumentError(
            "target: this deployer has no Terraform target (start it with --terraform-plan-dir, docs/terraform.md)");
      return terraform_->For(target);
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("target: kind ", static_cast<int>(target.kind()), " is not host, kubernetes, ansible or terraform"));
  }
}

}  // namespace ferry::deployer
