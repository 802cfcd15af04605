// ferry app list|get|create|rm|diff|sync|refresh|history|rollback|pin|unpin|wait

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/deployment_follower.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "cli/interrupt.h"
#include "cli/plan_view.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

bool IsFullSha(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s) {
    if (!absl::ascii_isxdigit(c) || absl::ascii_isupper(c)) return false;
  }
  return true;
}

absl::StatusOr<v1::Application> GetApp(Connection& conn, const std::string& id) {
  v1::GetApplicationRequest req;
  req.set_id(id);
  v1::Application app;
  grpc::Status s = conn.Planner().GetApplication(conn.Call().get(), req, &app);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::NotFoundError(absl::StrCat("no application \"", id, "\": `ferry app list` shows them"));
  }
  FERRY_RPC(conn, "planner", "read application " + id, s);
  return app;
}

// The environment a command acts on: --env, or the application's only one.
absl::StatusOr<std::string> EnvOf(const v1::Application& app, const std::string& env) {
  if (!env.empty()) {
    for (const auto& e : app.environment_ids()) {
      if (e == env) return env;
    }
    return absl::InvalidArgumentError(absl::StrCat("application ", app.id(), " does not deploy to ", env, " (it deploys to ",
                                                   absl::StrJoin(app.environment_ids(), ", "), ")"));
  }
  if (app.environment_ids_size() == 1) return app.environment_ids(0);
  return UsageError(absl::StrCat("application ", app.id(), " deploys to ", absl::StrJoin(app.environment_ids(), ", "),
                                 ": name one with --env"));
}

absl::Time DeadlineFrom(const std::string& timeout) {
  absl::Duration d;
  if (timeout.empty() || !absl::ParseDuration(timeout, &d) || d <= absl::ZeroDuration()) return absl::InfiniteFuture();
  return absl::Now() + d;
}

absl::Status CheckTimeout(const std::string& timeout) {
  absl::Duration d;
  if (!timeout.empty() && (!absl::ParseDuration(timeout, &d) || d <= absl::ZeroDuration())) {
    return UsageError(absl::StrCat("--timeout ", timeout, ": not a duration (e.g. 90s, 10m)"));
  }
  return absl::OkStatus();
}


// ---- list / get -------------------------------------------------------------

struct ListFlags {
  std::string repo, env;
};

absl::Status List(CliState& state, const ListFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListApplicationsRequest req;
  req.set_repository_id(f.repo);
  req.set_environment_id(f.env);
  req.set_page_size(1000);
  const Output& out = state.out();
  Table t({{"NAME"}, {"REPO"}, {"REF"}, {"PATH"}, {"RENDER", true}, {"ENVIRONMENTS"}, {"SYNC POLICY"}, {"DECLARED IN", true}});
  while (true) {
    v1::ListApplicationsResponse resp;
    FERRY_RPC(*conn, "planner", "list applications", conn->Planner().ListApplications(conn->Call().get(), req, &resp));
    for (const auto& a : resp.applications()) {
      if (out.structured()) {
        out.Emit(a);
        continue;
      }
      std::vector<std::string> policy = {a.sync_policy().automated() ? "auto" : "manual"};
      if (a.sync_policy().prune()) policy.push_back("prune");
      if (a.sync_policy().self_heal()) policy.push_back("self-heal");
      t.Add({a.id(), a.repository_id(), a.ref(), a.path().empty() ? "." : a.path(), RenderName(a.render_method()),
             absl::StrJoin(a.environment_ids(), ","), absl::StrJoin(policy, ","),
             a.has_declared_by() ? absl::StrCat(a.declared_by().repository_id(), ":", a.declared_by().path()) : "-"});
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  if (!out.structured()) {
    if (t.size() == 0) {
      out.Line("no applications: `ferry app create` or `ferry config apply --repo REPO --path ferry.yaml`");
    } else {
      std::fputs(t.Render(out.wide()).c_str(), out.stream());
    }
  }
  return absl::OkStatus();
}

absl::Status Get(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(v1::Application a, GetApp(*conn, id));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(a);
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("name:          ", a.id()));
  out.Line(absl::StrCat("source:        ", a.repository_id(), " ", a.ref(), " ", a.path().empty() ? "." : a.path(), " (",
                        RenderName(a.render_method()), ")"));
  out.Line(absl::StrCat("environments:  ", absl::StrJoin(a.environment_ids(), ", ")));
  out.Line(absl::StrCat("sync:          ", a.sync_policy().automated() ? "automated" : "manual",
                        a.sync_policy().prune() ? ", prune" : "", a.sync_policy().self_heal() ? ", self-heal" : ""));
  if (!a.depends_on().empty()) out.Line(absl::StrCat("depends on:    ", absl::StrJoin(a.depends_on(), ", ")));
  if (a.has_health_timeout()) out.Line(absl::StrCat("health wait:   ", a.health_timeout().seconds(), "s per wave"));
  if (a.has_declared_by()) {
    out.Line(absl::StrCat("declared in:   ", a.declared_by().repository_id(), " ", a.declared_by().ref(), " ",
                          a.declared_by().path().empty() ? "ferry.yaml" : a.declared_by().path(), " @ ",
                          ShortSha(a.declared_by().commit()), " (change it there; the API refuses edits)"));
  }
  out.Line("");
  Table t({{"ENV"}, {"SYNC"}, {"DEPLOYED"}, {"LAST PLAN"}, {"PLAN STATE"}});
  for (const auto& s : a.status()) {
    t.Add({s.environment_id(), out.Paint(SyncName(s.sync_status()), SyncColor(s.sync_status())),
           s.deployed_sha().empty() ? "-" : ShortSha(s.deployed_sha()), s.last_plan_id().empty() ? "-" : s.last_plan_id(),
           s.last_plan_id().empty() ? "-" : out.Paint(PlanStateName(s.last_plan_state()), PlanStateColor(s.last_plan_state()))});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

// ---- create / rm ------------------------------------------------------------

struct CreateFlags {
  std::string id, repo, ref = "main", path, render = "plain";
  std::vector<std::string> envs, depends_on;
  bool automated = false, prune = false, self_heal = false;
  std::string health_timeout;
};

absl::Status Create(CliState& state, const CreateFlags& f) {
  v1::Application a;
  a.set_id(f.id);
  a.set_repository_id(f.repo);
  a.set_ref(f.ref);
  a.set_path(f.path);
  if (f.render == "plain") a.set_render_method(v1::RENDER_METHOD_PLAIN);
  else if (f.render == "kustomize") a.set_render_method(v1::RENDER_METHOD_KUSTOMIZE);
  else if (f.render == "helm") a.set_render_method(v1::RENDER_METHOD_HELM);
  else if (f.render == "ansible") a.set_render_method(v1::RENDER_METHOD_ANSIBLE);
  else if (f.render == "terraform") a.set_render_method(v1::RENDER_METHOD_TERRAFORM);
  else return UsageError(absl::StrCat("--render ", f.render, ": use plain, kustomize, helm, ansible or terraform"));
  for (const auto& e : f.envs) a.add_environment_ids(e);
  for (const auto& d : f.depends_on) a.add_depends_on(d);
  a.mutable_sync_policy()->set_automated(f.automated);
  a.mutable_sync_policy()->set_prune(f.prune);
  a.mutable_sync_policy()->set_self_heal(f.self_heal);
  if (!f.health_timeout.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(f.health_timeout, &d)) return UsageError("--health-timeout " + f.health_timeout + ": not a duration");
    a.mutable_health_timeout()->set_seconds(absl::ToInt64Seconds(d));
  }
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::CreateApplicationRequest req;
  *req.mutable_application() = a;
  v1::Application out;
  FERRY_RPC(*conn, "planner", "create application " + f.id, conn->Planner().CreateApplication(conn->Call().get(), req, &out));
  if (state.out().structured()) {
    state.out().Emit(out);
  } else {
    state.out().Line(absl::StrCat("application ", out.id(), " created (", out.repository_id(), " ", out.ref(), " ",
                                  out.path().empty() ? "." : out.path(), " → ", absl::StrJoin(out.environment_ids(), ", "),
                                  "); `ferry status --app ", out.id(), "` follows it"));
  }
  return absl::OkStatus();
}

absl::Status Remove(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::DeleteApplicationRequest req;
  req.set_id(id);
  v1::DeleteApplicationResponse out;
  FERRY_RPC(*conn, "planner", "delete application " + id, conn->Planner().DeleteApplication(conn->Call().get(), req, &out));
  state.out().Line(absl::StrCat("application ", id, " deleted (what it deployed stays where it is)"));
  return absl::OkStatus();
}

// ---- diff -------------------------------------------------------------------

struct DiffFlags {
  std::string id, env, revision, plan;
  bool exit_code = false;
};

absl::Status Diff(CliState& state, const DiffFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  if (f.id.empty() && f.plan.empty()) return UsageError("ferry app diff needs an application (or --plan ID)");
  v1::Plan plan;
  if (!f.plan.empty()) {
    v1::GetPlanRequest req;
    req.set_plan_id(f.plan);
    req.set_view(v1::PLAN_VIEW_FULL);
    FERRY_RPC(*conn, "planner", "read plan " + f.plan, conn->Planner().GetPlan(conn->Call().get(), req, &plan));
    RETURN_IF_ERROR(FetchPlanDetails(*conn, &plan));
  } else {
    ASSIGN_OR_RETURN(v1::Application app, GetApp(*conn, f.id));
    ASSIGN_OR_RETURN(std::string env, EnvOf(app, f.env));
    v1::PreviewPlanRequest req;
    req.set_application_id(app.id());
    req.set_environment_id(env);
    std::string rev = f.revision.empty() ? app.ref() : f.revision;
    if (IsFullSha(rev)) req.mutable_revision()->set_sha(rev);
    else req.mutable_revision()->set_ref(rev);
    v1::PreviewPlanResponse resp;
    FERRY_RPC(*conn, "planner", absl::StrCat("diff ", app.id(), " in ", env),
              conn->Planner().PreviewPlan(conn->Call(absl::Minutes(5)).get(), req, &resp));
    plan = resp.plan();
    if (plan.details_omitted()) {
      state.out().Line("(the plan is too big for one message: `ferry app sync --no-wait` then `ferry plan show` pages it)");
    }
  }
  const Output& out = state.out();
  int changes = 0;
  for (const auto& a : plan.actions()) {
    if (a.action() != v1::OBJECT_ACTION_NOOP && a.action() != v1::OBJECT_ACTION_UNSPECIFIED) ++changes;
  }
  if (out.structured()) {
    for (const auto& a : plan.actions()) {
      nlohmann::json j = ToJson(a);
      j["application"] = plan.application_id();
      j["environment"] = plan.environment_id();
      out.Emit(j);
    }
  } else {
    PrintPlanSummary(plan, out, state.now());
    PrintPlanDiff(plan, out);
    if (changes == 0) out.Line("no differences: what Git says is what runs");
  }
  if (f.exit_code && changes > 0) return absl::FailedPreconditionError(absl::StrCat(changes, " object(s) differ"));
  return absl::OkStatus();
}

// ---- sync -------------------------------------------------------------------

struct SyncFlags {
  std::string id, env, revision, comment, timeout;
  bool approve = false, wait = false;
};

absl::Status Sync(CliState& state, const SyncFlags& f) {
  RETURN_IF_ERROR(CheckTimeout(f.timeout));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(v1::Application app, GetApp(*conn, f.id));
  ASSIGN_OR_RETURN(std::string env, EnvOf(app, f.env));
  v1::PlanRevisionRequest req;
  req.set_application_id(app.id());
  req.set_environment_id(env);
  std::string rev = f.revision.empty() ? app.ref() : f.revision;
  if (IsFullSha(rev)) req.mutable_revision()->set_sha(rev);
  else req.mutable_revision()->set_ref(rev);
  req.set_trigger(v1::PLAN_TRIGGER_EXPLICIT_REVISION);
  req.set_comment(f.comment.empty() ? "ferry app sync" : f.comment);
  req.set_approve(f.approve);
  v1::PlanRevisionResponse resp;
  FERRY_RPC(*conn, "planner", absl::StrCat("sync ", app.id(), " in ", env),
            conn->Planner().PlanRevision(conn->Call(absl::Minutes(5)).get(), req, &resp));
  const Output& out = state.out();
  if (resp.up_to_date()) {
    if (out.structured()) out.Emit(nlohmann::json{{"application", app.id()}, {"environment", env}, {"up_to_date", true}});
    else out.Line(absl::StrCat(app.id(), " in ", env, " is up to date with ", rev, ": nothing to deploy"));
    return absl::OkStatus();
  }
  const v1::Plan& plan = resp.plan();
  if (out.structured()) {
    out.Emit(PlanJson(plan));
  } else {
    out.Line(absl::StrCat("plan ", plan.id(), ": ", app.id(), " → ", env, " at ", ShortSha(plan.target_revision().sha()), " (",
                          PlanStateName(plan.state()), ")"));
  }
  if (!f.wait) {
    if (!out.structured()) {
      if (plan.state() == v1::PLAN_STATE_PENDING) {
        out.Line(absl::StrCat("it waits for approval in ", env, ": run `ferry plan approve ", plan.id(), "`"));
      } else {
        out.Line(absl::StrCat("`ferry app wait ", app.id(), " --env ", env, "` follows the deployment"));
      }
    }
    return absl::OkStatus();
  }
  DeploymentFollower follower(*conn, out, DeadlineFrom(f.timeout));
  absl::StatusOr<v1::Deployment> d = follower.FollowPlan(plan.id());
  return d.ok() ? absl::OkStatus() : d.status();
}

// ---- history ----------------------------------------------------------------

struct HistoryFlags {
  std::string id, env;
  int limit = 20;
};

absl::Status History(CliState& state, const HistoryFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListDeploymentsRequest req;
  req.set_application_id(f.id);
  req.set_environment_id(f.env);
  req.set_page_size(std::min(std::max(f.limit, 1), 1000));
  v1::ListDeploymentsResponse resp;
  FERRY_RPC(*conn, "deployer", "list the deployments of " + f.id, conn->Deployer().ListDeployments(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& d : resp.deployments()) out.Emit(d);
    return absl::OkStatus();
  }
  if (resp.deployments().empty()) {
    out.Line(absl::StrCat("no deployments of ", f.id, f.env.empty() ? "" : " in " + f.env, " yet"));
    return absl::OkStatus();
  }
  Table t({{"DEPLOYMENT"}, {"ENV"}, {"REVISION"}, {"KIND"}, {"OUTCOME"}, {"ACTOR"}, {"STARTED"}, {"DURATION"}, {"PLAN", true},
           {"MESSAGE", true}});
  for (const auto& d : resp.deployments()) {
    t.Add({d.id(), d.environment_id(), ShortSha(d.revision().sha()), DeploymentKindName(d.kind()),
           out.Paint(DeploymentStateName(d.state()), DeploymentStateColor(d.state())), ActorName(d.actor()),
           IsSet(d.start_time()) ? Age(d.start_time(), state.now()) + " ago" : "-", Elapsed(d.start_time(), d.end_time()),
           d.plan_id().empty() ? "-" : d.plan_id(), Truncate(d.message(), 60)});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

// ---- rollback ---------------------------------------------------------------

struct RollbackFlags {
  std::string id, env, target, comment, timeout;
  bool wait = false;
};

absl::Status Rollback(CliState& state, const RollbackFlags& f) {
  RETURN_IF_ERROR(CheckTimeout(f.timeout));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(v1::Application app, GetApp(*conn, f.id));
  ASSIGN_OR_RETURN(std::string env, EnvOf(app, f.env));
  v1::RollbackRequest req;
  req.set_application_id(app.id());
  req.set_environment_id(env);
  req.set_comment(f.comment.empty() ? "ferry app rollback" : f.comment);
  if (absl::StartsWith(f.target, "dep-")) {
    req.set_deployment_id(f.target);
  } else if (!f.target.empty()) {
    // A revision: a full sha, or the prefix of one an earlier deployment deployed.
    std::string sha = f.target;
    if (!IsFullSha(sha)) {
      v1::ListDeploymentsRequest list;
      list.set_application_id(app.id());
      list.set_environment_id(env);
      list.add_states(v1::DEPLOYMENT_STATE_SUCCEEDED);
      list.set_page_size(1000);
      v1::ListDeploymentsResponse deps;
      FERRY_RPC(*conn, "deployer", "list deployments", conn->Deployer().ListDeployments(conn->Call().get(), list, &deps));
      std::set<std::string> matches;
      for (const auto& d : deps.deployments()) {
        if (absl::StartsWith(d.revision().sha(), absl::AsciiStrToLower(sha))) matches.insert(d.revision().sha());
      }
      if (matches.empty()) {
        return absl::NotFoundError(absl::StrCat("no successful deployment of ", app.id(), " in ", env, " deployed a commit ",
                                                "starting with ", f.target, ": `ferry app history ", app.id(), " --env ",
                                                env, "` lists them"));
      }
      if (matches.size() > 1) return UsageError(absl::StrCat(f.target, " is ambiguous: give more of the sha"));
      sha = *matches.begin();
    }
    req.set_sha(sha);
  }
  v1::RollbackResponse resp;
  FERRY_RPC(*conn, "deployer", absl::StrCat("roll back ", app.id(), " in ", env),
            conn->Deployer().Rollback(conn->Call(absl::Minutes(2)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(resp);
  } else {
    out.Line(absl::StrCat("rolling ", app.id(), " in ", env, " back to ", ShortSha(resp.deployment().revision().sha()),
                          " (plan ", resp.plan_id(), ", deployment ", resp.deployment().id(), "); pinned there: `ferry app unpin ",
                          app.id(), " --env ", env, "` lets it follow ", app.ref(), " again"));
  }
  if (!f.wait) return absl::OkStatus();
  DeploymentFollower follower(*conn, out, DeadlineFrom(f.timeout));
  absl::StatusOr<v1::Deployment> d =
      resp.deployment().id().empty() ? follower.FollowPlan(resp.plan_id()) : follower.Follow(resp.deployment().id());
  return d.ok() ? absl::OkStatus() : d.status();
}

// ---- pin / unpin ------------------------------------------------------------

struct PinFlags {
  std::string id, env, sha, reason;
};

absl::Status Pin(CliState& state, const PinFlags& f, bool pin) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(v1::Application app, GetApp(*conn, f.id));
  ASSIGN_OR_RETURN(std::string env, EnvOf(app, f.env));
  v1::PinState result;
  if (pin) {
    v1::PinRequest req;
    req.set_application_id(app.id());
    req.set_environment_id(env);
    req.set_sha(f.sha);
    req.set_reason(f.reason);
    v1::PinResponse resp;
    FERRY_RPC(*conn, "deployer", absl::StrCat("pin ", app.id(), " in ", env), conn->Deployer().Pin(conn->Call().get(), req, &resp));
    result = resp.pin();
  } else {
    v1::UnpinRequest req;
    req.set_application_id(app.id());
    req.set_environment_id(env);
    req.set_reason(f.reason);
    v1::UnpinResponse resp;
    FERRY_RPC(*conn, "deployer", absl::StrCat("unpin ", app.id(), " in ", env), conn->Deployer().Unpin(conn->Call().get(), req, &resp));
    result = resp.pin();
  }
  if (state.out().structured()) {
    state.out().Emit(result);
  } else if (pin) {
    state.out().Line(absl::StrCat(app.id(), " is pinned in ", env, " at ", ShortSha(result.sha()),
                                  ": automated sync leaves it there until `ferry app unpin ", app.id(), " --env ", env, "`"));
  } else {
    state.out().Line(absl::StrCat(app.id(), " is unpinned in ", env, "; it follows ", app.ref(), " again"));
  }
  return absl::OkStatus();
}

// ---- wait -------------------------------------------------------------------

struct WaitFlags {
  std::string id, env, timeout = "10m";
};

absl::Status Wait(CliState& state, const WaitFlags& f) {
  RETURN_IF_ERROR(CheckTimeout(f.timeout));
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  ASSIGN_OR_RETURN(v1::Application app, GetApp(*conn, f.id));
  ASSIGN_OR_RETURN(std::string env, EnvOf(app, f.env));
  absl::Time deadline = DeadlineFrom(f.timeout);
  const Output& out = state.out();
  DeploymentFollower follower(*conn, out, deadline);
  // A plan on its way (approved or executing) is followed to its end.
  v1::ListPlansRequest req;
  req.set_application_id(app.id());
  req.set_environment_id(env);
  req.add_states(v1::PLAN_STATE_APPROVED);
  req.add_states(v1::PLAN_STATE_EXECUTING);
  req.add_states(v1::PLAN_STATE_PENDING);
  req.set_page_size(10);
  v1::ListPlansResponse plans;
  FERRY_RPC(*conn, "planner", "list plans", conn->Planner().ListPlans(conn->Call().get(), req, &plans));
  if (!plans.plans().empty()) {
    const v1::Plan& p = plans.plans(0);
    absl::StatusOr<v1::Deployment> d = follower.FollowPlan(p.id());
    if (!d.ok()) return d.status();
  } else {
    // Else the newest deployment, if it still runs.
    v1::ListDeploymentsRequest list;
    list.set_application_id(app.id());
    list.set_environment_id(env);
    list.set_page_size(1);
    v1::ListDeploymentsResponse deps;
    FERRY_RPC(*conn, "deployer", "list deployments", conn->Deployer().ListDeployments(conn->Call().get(), list, &deps));
    if (!deps.deployments().empty()) {
      const v1::Deployment& last = deps.deployments(0);
      if (!IsTerminal(last.state())) {
        absl::StatusOr<v1::Deployment> d = follower.Follow(last.id());
        if (!d.ok()) return d.status();
      } else if (last.state() != v1::DEPLOYMENT_STATE_SUCCEEDED) {
        return WaitFailed(absl::StrCat("the last deployment of ", app.id(), " to ", env, " (", last.id(), ") ",
                                       absl::AsciiStrToLower(DeploymentStateName(last.state())),
                                       last.message().empty() ? "" : ": " + last.message()));
      }
    }
  }
  // Then until the live state is healthy.
  Interrupts::Waiting waiting;
  std::string said;
  while (true) {
    v1::GetLiveStateRequest live_req;
    live_req.set_application_id(app.id());
    live_req.set_environment_id(env);
    v1::LiveState live;
    grpc::Status s = conn->Deployer().GetLiveState(conn->Call().get(), live_req, &live);
    if (s.ok() && live.health() == v1::HEALTH_STATUS_HEALTHY) {
      if (out.structured()) out.Emit(live);
      else out.Line(absl::StrCat(app.id(), " in ", env, " is ", out.Paint("Healthy", Color::kGreen), " at ",
                                 ShortSha(live.revision().sha())));
      return absl::OkStatus();
    }
    if (!s.ok() && s.error_code() != grpc::StatusCode::NOT_FOUND && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return conn->Error("deployer", "read live state", s);
    }
    std::string now = s.ok() ? HealthName(live.health()) : "not deployed yet";
    if (now != said && !out.structured()) out.Line(absl::StrCat(app.id(), " in ", env, ": ", now, " (waiting for Healthy)"));
    said = now;
    if (Interrupts::Get().interrupted()) return Interrupted("stopped waiting");
    if (absl::Now() >= deadline) return WaitTimedOut(absl::StrCat("timed out: ", app.id(), " in ", env, " is ", now));
    absl::SleepFor(absl::Milliseconds(300));
  }
}

// ---- refresh ----------------------------------------------------------------

struct RefreshFlags {
  std::string id, env;
  bool hard = false;
};

absl::Status Refresh(CliState& state, const RefreshFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::RefreshApplicationRequest req;
  req.set_application_id(f.id);
  req.set_environment_id(f.env);
  req.set_hard(f.hard);
  v1::RefreshApplicationResponse resp;
  FERRY_RPC(*conn, "planner", "refresh " + f.id, conn->Planner().RefreshApplication(conn->Call(absl::Minutes(5)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& p : resp.plans()) out.Emit(PlanJson(p));
    return absl::OkStatus();
  }
  if (resp.plans().empty()) {
    out.Line(absl::StrCat(f.id, ": rendered and compared; nothing differs"));
  }
  for (const auto& p : resp.plans()) {
    out.Line(absl::StrCat("plan ", p.id(), ": ", p.application_id(), " → ", p.environment_id(), " at ",
                          ShortSha(p.target_revision().sha()), " (", PlanStateName(p.state()), ")",
                          p.state() == v1::PLAN_STATE_PENDING ? absl::StrCat(": run `ferry plan approve ", p.id(), "`") : ""));
  }
  return absl::OkStatus();
}

}  // namespace

void AddAppCommands(CLI::App& root, CliState& state) {
  CLI::App* app = Group(root, "app", "Applications: list, inspect, diff, sync, roll back, pin");

  auto lf = std::make_shared<ListFlags>();
  CLI::App* l = Leaf(*app, state, "list", "List applications with their sync status per environment",
                     "  ferry app list\n  ferry app list --env prod -o wide\n", [&state, lf] { return List(state, *lf); });
  l->add_option("--repo", lf->repo, "Only applications of this repository");
  l->add_option("--env", lf->env, "Only applications deploying to this environment");

  auto get_id = std::make_shared<std::string>();
  Leaf(*app, state, "get", "Show one application and its status in each environment", "  ferry app get hello\n",
       [&state, get_id] { return Get(state, *get_id); })
      ->add_option("name", *get_id, "Application")
      ->required();

  auto cf = std::make_shared<CreateFlags>();
  CLI::App* c = Leaf(*app, state, "create", "Create an application (applications declared in a ferry.yaml are managed there)",
                     "  ferry app create web --repo example --path apps/web --env local,prod --auto\n",
                     [&state, cf] { return Create(state, *cf); });
  c->add_option("name", cf->id, "Application name (a DNS label)")->required();
  c->add_option("--repo", cf->repo, "Repository id (`ferry repo list`)")->required();
  c->add_option("--path", cf->path, "Folder in the repository")->required();
  c->add_option("--ref", cf->ref, "Branch or ref to follow")->capture_default_str();
  c->add_option("--env", cf->envs, "Environments (comma-separated or repeated)")->delimiter(',')->required();
  c->add_option("--render", cf->render, "plain, kustomize, helm, ansible or terraform")->capture_default_str();
  c->add_option("--depends-on", cf->depends_on, "Applications deployed healthy first")->delimiter(',');
  c->add_flag("--auto", cf->automated, "Deploy new revisions automatically");
  c->add_flag("--prune", cf->prune, "Delete objects no longer in Git");
  c->add_flag("--self-heal", cf->self_heal, "Correct drift automatically");
  c->add_option("--health-timeout", cf->health_timeout, "Time each wave may take to become healthy (default 5m)");

  auto rm_id = std::make_shared<std::string>();
  Leaf(*app, state, "rm", "Delete an application (what it deployed stays)", "  ferry app rm web\n",
       [&state, rm_id] { return Remove(state, *rm_id); })
      ->add_option("name", *rm_id, "Application")
      ->required();

  auto df = std::make_shared<DiffFlags>();
  CLI::App* d = Leaf(*app, state, "diff", "What a sync would change, object by object, as unified diffs",
                     "  ferry app diff hello --env prod\n  ferry app diff hello --revision feature/x\n"
                     "  ferry app diff hello --env local --exit-code || echo 'out of sync'\n",
                     [&state, df] { return Diff(state, *df); });
  d->add_option("name", df->id, "Application");
  d->add_option("--env", df->env, "Environment (needed when the application has several)");
  d->add_option("--revision", df->revision, "Branch, ref or full sha to compare (default: the application's ref)");
  d->add_option("--plan", df->plan, "Show this plan's diff instead");
  d->add_flag("--exit-code", df->exit_code, "Exit 1 when something differs (like git diff --exit-code)");

  auto sf = std::make_shared<SyncFlags>();
  CLI::App* s = Leaf(*app, state, "sync", "Plan the application's ref (or --revision) now and, with --wait, follow the deployment",
                     "  ferry app sync hello --env local --wait\n  ferry app sync hello --env prod --revision 1a2b3c4... --approve\n",
                     [&state, sf] { return Sync(state, *sf); });
  s->add_option("name", sf->id, "Application")->required();
  s->add_option("--env", sf->env, "Environment (needed when the application has several)");
  s->add_option("--revision", sf->revision, "Branch, ref or full sha (default: the application's ref)");
  s->add_flag("--approve", sf->approve, "Approve the plan as you (where the environment needs approval)");
  s->add_flag("--wait", sf->wait, "Follow the deployment step by step until it ends (exit 3 if it fails)");
  s->add_option("--timeout", sf->timeout, "Give up waiting after this long (exit 4)");
  s->add_option("--comment", sf->comment, "Recorded with the plan");

  auto hf = std::make_shared<HistoryFlags>();
  CLI::App* h = Leaf(*app, state, "history", "Deployments, newest first: revision, actor, outcome, duration",
                     "  ferry app history hello\n  ferry app history hello --env prod -o wide\n",
                     [&state, hf] { return History(state, *hf); });
  h->add_option("name", hf->id, "Application")->required();
  h->add_option("--env", hf->env, "Only this environment");
  h->add_option("--limit", hf->limit, "How many")->capture_default_str();

  auto rf = std::make_shared<RollbackFlags>();
  CLI::App* r = Leaf(*app, state, "rollback", "Restore an earlier successful deployment (by id or revision) and pin it",
                     "  ferry app rollback hello --env local            # the one before the live one\n"
                     "  ferry app rollback hello --env local dep-plan-3 --wait\n  ferry app rollback hello --env prod 1a2b3c4\n",
                     [&state, rf] { return Rollback(state, *rf); });
  r->add_option("name", rf->id, "Application")->required();
  r->add_option("target", rf->target, "Deployment id (dep-...) or revision (sha or its prefix); default: the previous one");
  r->add_option("--env", rf->env, "Environment (needed when the application has several)");
  r->add_flag("--wait", rf->wait, "Follow the rollback until it ends");
  r->add_option("--timeout", rf->timeout, "Give up waiting after this long (exit 4)");
  r->add_option("--comment", rf->comment, "Why (recorded with the plan, pin and audit)");

  auto pf = std::make_shared<PinFlags>();
  CLI::App* p = Leaf(*app, state, "pin", "Hold an application at a commit: automated sync stops moving it",
                     "  ferry app pin hello --env prod --reason 'release freeze'\n",
                     [&state, pf] { return Pin(state, *pf, true); });
  p->add_option("name", pf->id, "Application")->required();
  p->add_option("--env", pf->env, "Environment (needed when the application has several)");
  p->add_option("--sha", pf->sha, "Commit to hold at (default: the live one)");
  p->add_option("--reason", pf->reason, "Why");
  auto uf = std::make_shared<PinFlags>();
  CLI::App* u = Leaf(*app, state, "unpin", "Let a pinned application follow its ref again",
                     "  ferry app unpin hello --env prod\n", [&state, uf] { return Pin(state, *uf, false); });
  u->add_option("name", uf->id, "Application")->required();
  u->add_option("--env", uf->env, "Environment (needed when the application has several)");
  u->add_option("--reason", uf->reason, "Why");

  auto wf = std::make_shared<WaitFlags>();
  CLI::App* w = Leaf(*app, state, "wait", "Wait until what is on its way is deployed and the application is healthy",
                     "  ferry app wait hello --env local --timeout 5m\n", [&state, wf] { return Wait(state, *wf); });
  w->add_option("name", wf->id, "Application")->required();
  w->add_option("--env", wf->env, "Environment (needed when the application has several)");
  w->add_option("--timeout", wf->timeout, "Give up after this long (exit 4)")->capture_default_str();

  auto ff = std::make_shared<RefreshFlags>();
  CLI::App* f = Leaf(*app, state, "refresh", "Render and compare now, making plans where something differs",
                     "  ferry app refresh hello\n  ferry app refresh hello --env prod --hard\n",
                     [&state, ff] { return Refresh(state, *ff); });
  f->add_option("name", ff->id, "Application")->required();
  f->add_option("--env", ff->env, "Only this environment");
  f->add_flag("--hard", ff->hard, "Bypass the render cache");
}

}  // namespace ferry::cli
