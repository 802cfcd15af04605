#include "services/deployer/deployment_history.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::deployer {

absl::StatusOr<v1::Deployment> DeploymentHistory::GetDeployment(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("deployment_id is required");
  return records_->Get(id, true);
}

absl::StatusOr<v1::ListDeploymentsResponse> DeploymentHistory::ListDeployments(const v1::ListDeploymentsRequest& req) {
  if (req.page_size() < 0 || req.page_size() > 1000) {
    return absl::InvalidArgumentError("page_size must be between 0 and 1000");
  }
  DeploymentFilter f;
  f.application_id = req.application_id();
  f.environment_id = req.environment_id();
  for (int s : req.states()) f.states.push_back(static_cast<v1::DeploymentState>(s));
  f.include_steps = req.include_steps();
  f.page_size = req.page_size() == 0 ? 50 : req.page_size();
  if (!req.page_token().empty() && (!absl::SimpleAtoi(req.page_token(), &f.after_seq) || f.after_seq <= 0)) {
    return absl::InvalidArgumentError("page_token is not a token from a previous response");
  }
  absl::StatusOr<DeploymentPage> page = records_->List(f);
  if (!page.ok()) return page.status();
  v1::ListDeploymentsResponse out;
  for (v1::Deployment& d : page->deployments) *out.add_deployments() = std::move(d);
  if (page->next_seq != 0) out.set_next_page_token(absl::StrCat(page->next_seq));
  return out;
}

}  // namespace ferry::deployer
