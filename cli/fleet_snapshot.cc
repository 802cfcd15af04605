#include "cli/fleet_snapshot.h"

#include <grpcpp/grpcpp.h>

#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/concurrency/parallel_for.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

// Calls in flight at once. A service answers unary calls on 16 threads
// (--threads) and refuses more with RESOURCE_EXHAUSTED ("Server Threadpool
// Exhausted", seen at 64 in bench/cli): stay well under, and retry the few
// that are refused anyway.
constexpr int kMaxInFlight = 8;
constexpr int kMaxAttempts = 5;

absl::StatusOr<std::vector<v1::Application>> ListApps(Connection& conn, const SnapshotFilter& filter) {
  std::vector<v1::Application> apps;
  v1::ListApplicationsRequest req;
  req.set_page_size(1000);
  req.set_environment_id(filter.environment_id);
  if (!filter.application_id.empty()) {
    v1::GetApplicationRequest get;
    get.set_id(filter.application_id);
    v1::Application app;
    FERRY_RPC(conn, "planner", "read application " + filter.application_id,
              conn.Planner().GetApplication(conn.Call().get(), get, &app));
    apps.push_back(app);
    return apps;
  }
  while (true) {
    v1::ListApplicationsResponse out;
    FERRY_RPC(conn, "planner", "list applications", conn.Planner().ListApplications(conn.Call().get(), req, &out));
    for (auto& a : *out.mutable_applications()) apps.push_back(std::move(a));
    if (out.next_page_token().empty()) break;
    req.set_page_token(out.next_page_token());
  }
  return apps;
}

absl::StatusOr<std::vector<v1::Plan>> ListWaitingPlans(Connection& conn, const SnapshotFilter& filter) {
  std::vector<v1::Plan> plans;
  v1::ListPlansRequest req;
  req.set_application_id(filter.application_id);
  req.set_environment_id(filter.environment_id);
  req.add_states(v1::PLAN_STATE_PENDING);
  req.add_states(v1::PLAN_STATE_APPROVED);
  req.add_states(v1::PLAN_STATE_EXECUTING);
  req.set_view(v1::PLAN_VIEW_BASIC);
  req.set_page_size(1000);
  while (true) {
    v1::ListPlansResponse out;
    FERRY_RPC(conn, "planner", "list plans", conn.Planner().ListPlans(conn.Call().get(), req, &out));
    for (auto& p : *out.mutable_plans()) plans.push_back(std::move(p));
    if (out.next_page_token().empty()) break;
    req.set_page_token(out.next_page_token());
  }
  return plans;
}

// GetLiveState of every row, kMaxInFlight at a time over one channel.
void ReadLiveStates(Connection& conn, std::vector<StatusRow>& rows) {
  struct Call {
    size_t row;
    std::unique_ptr<grpc::ClientContext> ctx;
    v1::LiveState reply;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::LiveState>> reader;
  };
  grpc::CompletionQueue cq;
  std::deque<size_t> todo;
  for (size_t i = 0; i < rows.size(); ++i) todo.push_back(i);
  std::vector<int> attempts(rows.size(), 0);
  size_t in_flight = 0;
  auto start = [&](size_t i) {
    auto* call = new Call();
    call->row = i;
    call->ctx = conn.Call();
    v1::GetLiveStateRequest req;
    req.set_application_id(rows[i].application_id);
    req.set_environment_id(rows[i].environment_id);
    call->reader = conn.Deployer().PrepareAsyncGetLiveState(call->ctx.get(), req, &cq);
    call->reader->StartCall();
    call->reader->Finish(&call->reply, &call->status, call);
    ++attempts[i];
    ++in_flight;
  };
  while (!todo.empty() && in_flight < kMaxInFlight) {
    start(todo.front());
    todo.pop_front();
  }
  void* tag = nullptr;
  bool ok = false;
  while (in_flight > 0 && cq.Next(&tag, &ok)) {
    std::unique_ptr<Call> call(static_cast<Call*>(tag));
    --in_flight;
    StatusRow& row = rows[call->row];
    if (call->status.ok()) {
      row.live = std::move(call->reply);
    } else if (call->status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED && attempts[call->row] < kMaxAttempts) {
      absl::SleepFor(absl::Milliseconds(10 * attempts[call->row]));
      todo.push_back(call->row);
    } else if (call->status.error_code() != grpc::StatusCode::NOT_FOUND) {
      row.live_error = std::string(conn.Error("deployer", "read live state", call->status).message());
    }
    while (!todo.empty() && in_flight < kMaxInFlight) {
      start(todo.front());
      todo.pop_front();
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

absl::StatusOr<FleetSnapshot> ReadFleet(Connection& conn, const SnapshotFilter& filter) {
  FleetSnapshot snap;
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, ListApps(conn, filter));
  std::set<std::string> envs, repos;
  for (const v1::Application& app : apps) {
    std::map<std::string, v1::ApplicationEnvironmentStatus> by_env;
    for (const auto& s : app.status()) by_env[s.environment_id()] = s;
    for (const std::string& env : app.environment_ids()) {
      if (!filter.environment_id.empty() && env != filter.environment_id) continue;
      StatusRow row;
      row.application_id = app.id();
      row.environment_id = env;
      row.app_status = by_env[env];
      row.ref = app.ref();
      row.automated = app.sync_policy().automated();
      row.self_heal = app.sync_policy().self_heal();
      snap.rows.push_back(std::move(row));
      envs.insert(env);
    }
    repos.insert(app.repository_id());
  }
  snap.applications = static_cast<int>(apps.size());
  snap.environments = static_cast<int>(envs.size());
  if (snap.rows.empty()) return snap;

  std::map<std::pair<std::string, std::string>, StatusRow*> index;
  for (StatusRow& r : snap.rows) index[{r.application_id, r.environment_id}] = &r;

  // The reads below are independent of each other: they run at once, each
  // into its own result (the stubs are made first; a stub may be shared
  // between threads, its lazy creation may not).
  conn.Planner();
  conn.Deployer();
  conn.RepoWatcher();
  absl::StatusOr<std::vector<v1::Plan>> waiting;
  absl::Status latest_status;
  v1::ListPlansResponse latest;
  grpc::Status deployments_status;
  v1::ListDeploymentsResponse deployments;
  std::vector<std::string> repo_list(repos.begin(), repos.end());
  std::vector<grpc::Status> revisions_status(repo_list.size());
  std::vector<v1::ListRevisionsResponse> revisions(repo_list.size());
  const size_t kFixed = 4;
  absl::Status ran = concurrency::ParallelFor(kFixed + repo_list.size(), 6, [&](size_t i) -> absl::Status {
    switch (i) {
      case 0:
        ReadLiveStates(conn, snap.rows);
        return absl::OkStatus();
      case 1:
        waiting = ListWaitingPlans(conn, filter);
        return absl::OkStatus();
      case 2: {
        // The newest plan of each row, in any state: the planner's sync
        // status (ListApplications leaves Application.status empty;
        // GetApplication fills it from the same rule, one at a time).
        v1::ListPlansRequest req;
        req.set_application_id(filter.application_id);
        req.set_environment_id(filter.environment_id);
        req.set_view(v1::PLAN_VIEW_BASIC);
        req.set_page_size(1000);
        grpc::Status st = conn.Planner().ListPlans(conn.Call().get(), req, &latest);
        if (!st.ok()) latest_status = conn.Error("planner", "list plans", st);
        return absl::OkStatus();
      }
      case 3: {
        // The newest deployments: the latest per row, and the latest that succeeded.
        v1::ListDeploymentsRequest req;
        req.set_application_id(filter.application_id);
        req.set_environment_id(filter.environment_id);
        req.set_page_size(1000);
        deployments_status = conn.Deployer().ListDeployments(conn.Call().get(), req, &deployments);
        return absl::OkStatus();
      }
      default: {
        // The deployed commits, from each repository's newest revisions.
        size_t k = i - kFixed;
        v1::ListRevisionsRequest req;
        req.set_repository_id(repo_list[k]);
        req.set_page_size(1000);
        revisions_status[k] = conn.RepoWatcher().ListRevisions(conn.Call().get(), req, &revisions[k]);
        return absl::OkStatus();
      }
    }
  });
  RETURN_IF_ERROR(ran);
  if (!waiting.ok()) return waiting.status();
  RETURN_IF_ERROR(latest_status);
  for (v1::Plan& p : *waiting) {
    auto it = index.find({p.application_id(), p.environment_id()});
    if (it != index.end()) it->second->waiting.push_back(std::move(p));
  }
  for (v1::Plan& p : *latest.mutable_plans()) {
    auto it = index.find({p.application_id(), p.environment_id()});
    if (it != index.end() && !it->second->latest_plan) it->second->latest_plan = std::move(p);
  }
  if (!deployments_status.ok()) {
    snap.warnings.push_back(std::string(conn.Error("deployer", "list deployments", deployments_status).message()));
  }
  for (v1::Deployment& d : *deployments.mutable_deployments()) {
    auto it = index.find({d.application_id(), d.environment_id()});
    if (it == index.end()) continue;
    StatusRow* row = it->second;
    if (!row->last_deployment) row->last_deployment = d;
    if (!row->last_succeeded && d.state() == v1::DEPLOYMENT_STATE_SUCCEEDED) row->last_succeeded = d;
  }
  std::map<std::string, v1::Revision> by_sha;
  for (size_t k = 0; k < repo_list.size(); ++k) {
    if (!revisions_status[k].ok()) {  // commits then show by sha only
      snap.warnings.push_back(
          std::string(conn.Error("repo-watcher", "list the revisions of " + repo_list[k], revisions_status[k]).message()));
      continue;
    }
    for (v1::Revision& r : *revisions[k].mutable_revisions()) {
      if (!r.sha().empty() && !by_sha.count(r.sha())) by_sha[r.sha()] = std::move(r);
    }
  }
  for (StatusRow& r : snap.rows) {
    std::string sha = r.live && !r.live->revision().sha().empty() ? r.live->revision().sha() : r.app_status.deployed_sha();
    auto it = by_sha.find(sha);
    if (it != by_sha.end()) r.revision = it->second;
  }
  return snap;
}

}  // namespace ferry::cli
