#include "services/deployer/deployment_history.h"

#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"

namespace ferry::deployer {

absl::StatusOr<v1::Deployment> DeploymentHistory::GetDeployment(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("deployment_id is required");
  return records_->Get(id, true);
}

absl::StatusOr<v1::ListDeploymentsResponse> DeploymentHistory::ListDeployments(const v1::ListDeploymentsRequest& req) {
  absl::StatusOr<int> page_size = api::PageSize(req.page_size());
  if (!page_size.ok()) return page_size.status();
  absl::StatusOr<int64_t> after = api::SequencePageToken(req.page_token(), "not a token from a previous response");
  if (!after.ok()) return after.status();
  DeploymentFilter f;
  f.application_id = req.application_id();
  f.environment_id = req.environment_id();
  for (int s : req.states()) f.states.push_back(static_cast<v1::DeploymentState>(s));
  f.include_steps = req.include_steps();
  f.page_size = *page_size;
  f.after_seq = *after;
  absl::StatusOr<DeploymentPage> page = records_->List(f);
  if (!page.ok()) return page.status();
  v1::ListDeploymentsResponse out;
  for (v1::Deployment& d : page->deployments) *out.add_deployments() = std::move(d);
  if (page->next_seq != 0) out.set_next_page_token(absl::StrCat(page->next_seq));
  return out;
}

}  // namespace ferry::deployer
