#include "services/audit/audit_access.h"

namespace ferry::audit {

void AddAuditRules(auth::AccessControl& access) {
  using auth::Permission;
  using auth::Rule;
  Rule append;
  append.services = {"repo-watcher", "planner", "deployer", "audit", "notifier"};
  append.services_only = true;
  Rule read;
  read.permission = Permission::kView;
  // The notifier follows the trail to notify (services/notifier).
  Rule tail = read;
  tail.services = {"notifier"};
  access.AddRule("ferry.v1.AppendRequest", append);
  access.AddRule("ferry.v1.AppendBatchRequest", append);
  access.AddRule("ferry.v1.QueryRequest", read);
  access.AddRule("ferry.v1.TailRequest", tail);
  access.AddRule("ferry.v1.VerifyChainRequest", read);
  access.AddRule("ferry.v1.GetCheckpointRequest", read);
  access.AddRule("ferry.v1.ExportRequest", read);
  // Time travel and DORA read the deployment history: view, anywhere (as Query).
  access.AddRule("ferry.v1.GetDoraMetricsRequest", read);
  access.AddRule("ferry.v1.GetDeployedStateRequest", read);
  access.AddRule("ferry.v1.ListChangesRequest", read);
}

}  // namespace ferry::audit
