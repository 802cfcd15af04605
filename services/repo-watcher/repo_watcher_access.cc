#include "services/repo-watcher/repo_watcher_access.h"

namespace ferry::repo_watcher {

void AddRepoWatcherRules(auth::AccessControl& access) {
  using auth::Permission;
  using auth::Rule;
  // The planner and the deployer read repositories and revisions to plan
  // and deploy; people with view permission may too.
  Rule view;
  view.permission = Permission::kView;
  view.services = {"planner", "deployer"};
  Rule admin;
  admin.permission = Permission::kAdmin;
  Rule refresh;
  refresh.permission = Permission::kOperate;
  refresh.scope = [](const google::protobuf::Message&) { return absl::StatusOr<auth::Scope>(auth::Scope::Any()); };
  Rule services_only;
  services_only.services = {"planner", "deployer"};
  services_only.services_only = true;
  access.AddRule("ferry.v1.CreateRepositoryRequest", admin);
  // The notifier reads a repository's git_host for commit statuses.
  Rule get = view;
  get.services = {"planner", "deployer", "notifier"};
  access.AddRule("ferry.v1.GetRepositoryRequest", get);
  access.AddRule("ferry.v1.ListRepositoriesRequest", view);
  access.AddRule("ferry.v1.UpdateRepositoryRequest", admin);
  access.AddRule("ferry.v1.DeleteRepositoryRequest", admin);
  access.AddRule("ferry.v1.GetRepositoryStatusRequest", view);
  // Fetching now changes nothing but timing: any operator.
  access.AddRule("ferry.v1.RefreshRepositoryRequest", refresh);
  access.AddRule("ferry.v1.WatchRevisionsRequest", view);
  access.AddRule("ferry.v1.ListRevisionsRequest", view);
  access.AddRule("ferry.v1.CheckRevisionRequest", view);
  // File contents may hold what only the services need to read.
  access.AddRule("ferry.v1.ReadContentRequest", services_only);
  // Review events (#20): CI systems report check results with the ci role
  // (permission report-checks, at every application and environment:
  // a check belongs to a commit, not to one of them); reading them is view.
  Rule report;
  report.permission = Permission::kReportChecks;
  access.AddRule("ferry.v1.ReportCheckRequest", report);
  access.AddRule("ferry.v1.ListChecksRequest", view);
  access.AddRule("ferry.v1.ListPullRequestsRequest", view);
  access.AddRule("ferry.v1.WatchReviewEventsRequest", view);
}

}  // namespace ferry::repo_watcher
