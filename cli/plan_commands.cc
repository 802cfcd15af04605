// ferry plan list|show|approve|reject|preview

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "cli/plan_view.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

struct ListFlags {
  std::string app, env;
  std::vector<std::string> states;
  int limit = 50;
};

absl::Status List(CliState& state, const ListFlags& f) {
  v1::ListPlansRequest req;
  req.set_application_id(f.app);
  req.set_environment_id(f.env);
  for (const std::string& s : f.states) {
    std::optional<v1::PlanState> st = ParsePlanState(s);
    if (!st) {
      return UsageError(absl::StrCat("--state ", s, ": not a plan state (pending, approved, executing, succeeded, failed, "
                                     "rolled-back, rejected, superseded)"));
    }
    req.add_states(*st);
  }
  req.set_page_size(std::min(std::max(f.limit, 1), 1000));
  req.set_view(v1::PLAN_VIEW_BASIC);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListPlansResponse resp;
  FERRY_RPC(*conn, "planner", "list plans", conn->Planner().ListPlans(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& p : resp.plans()) out.Emit(PlanJson(p));
    return absl::OkStatus();
  }
  if (resp.plans().empty()) {
    out.Line("no plans match");
    return absl::OkStatus();
  }
  Table t({{"PLAN"}, {"APP"}, {"ENV"}, {"STATE"}, {"REVISION"}, {"TRIGGER"}, {"REQUESTED BY"}, {"AGE"}, {"CHANGES", true},
           {"DEPLOYMENT", true}, {"WHY"}});
  for (const auto& p : resp.plans()) {
    int changes = 0;
    for (const auto& a : p.actions()) changes += a.action() != v1::OBJECT_ACTION_NOOP ? 1 : 0;
    std::string why = p.state() == v1::PLAN_STATE_PENDING ? "awaiting approval"
                      : p.hold_reason() != v1::HOLD_REASON_UNSPECIFIED ? HoldName(p.hold_reason())
                      : !p.failure().message().empty()                 ? Truncate(p.failure().message(), 50)
                                                                       : "";
    t.Add({p.id(), p.application_id(), p.environment_id(), out.Paint(PlanStateName(p.state()), PlanStateColor(p.state())),
           ShortSha(p.target_revision().sha()), TriggerName(p.trigger()), ActorName(p.requested_by()),
           Age(p.create_time(), state.now()), std::to_string(changes), p.deployment_id().empty() ? "-" : p.deployment_id(),
           why});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

absl::Status Show(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetPlanRequest req;
  req.set_plan_id(id);
  req.set_view(v1::PLAN_VIEW_FULL);
  v1::Plan plan;
  grpc::Status s = conn->Planner().GetPlan(conn->Call().get(), req, &plan);
  if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
    return absl::NotFoundError(absl::StrCat("no plan ", id, ": `ferry plan list` shows them"));
  }
  FERRY_RPC(*conn, "planner", "read plan " + id, s);
  RETURN_IF_ERROR(FetchPlanDetails(*conn, &plan));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(PlanJson(plan));
    return absl::OkStatus();
  }
  PrintPlanSummary(plan, out, state.now());
  PrintPlanDiff(plan, out);
  return absl::OkStatus();
}

struct DecideFlags {
  std::string id, comment;
};

absl::Status Decide(CliState& state, const DecideFlags& f, bool approve) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::Plan plan;
  grpc::Status s;
  if (approve) {
    v1::ApprovePlanRequest req;
    req.set_plan_id(f.id);
    req.set_comment(f.comment);
    s = conn->Planner().ApprovePlan(conn->Call().get(), req, &plan);
  } else {
    v1::RejectPlanRequest req;
    req.set_plan_id(f.id);
    req.set_comment(f.comment);
    s = conn->Planner().RejectPlan(conn->Call().get(), req, &plan);
  }
  if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    return absl::FailedPreconditionError(absl::StrCat("cannot ", approve ? "approve" : "reject", " plan ", f.id, ": ",
                                                      s.error_message(), " (`ferry plan show ", f.id, "`)"));
  }
  FERRY_RPC(*conn, "planner", absl::StrCat(approve ? "approve" : "reject", " plan ", f.id), s);
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(PlanJson(plan));
  } else if (!approve) {
    out.Line(absl::StrCat("plan ", plan.id(), " rejected"));
  } else if (plan.state() == v1::PLAN_STATE_PENDING) {
    out.Line(absl::StrCat("approval recorded (", plan.approvals_size(), " so far); plan ", plan.id(),
                          " needs more approvals before it deploys"));
  } else {
    out.Line(absl::StrCat("plan ", plan.id(), " approved (", PlanStateName(plan.state()),
                          plan.hold_reason() != v1::HOLD_REASON_UNSPECIFIED ? ", held: " + HoldName(plan.hold_reason()) : "",
                          "): `ferry app wait ", plan.application_id(), " --env ", plan.environment_id(),
                          "` follows the deployment"));
  }
  return absl::OkStatus();
}

struct PreviewFlags {
  std::string app, env, ref, sha;
};

absl::Status Preview(CliState& state, const PreviewFlags& f) {
  if (f.ref.empty() == f.sha.empty()) return UsageError("ferry plan preview needs --ref BRANCH or --sha SHA (one of them)");
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::PreviewPlanRequest req;
  req.set_application_id(f.app);
  std::string env = f.env;
  if (env.empty()) {
    v1::GetApplicationRequest get;
    get.set_id(f.app);
    v1::Application app;
    FERRY_RPC(*conn, "planner", "read application " + f.app, conn->Planner().GetApplication(conn->Call().get(), get, &app));
    if (app.environment_ids_size() != 1) {
      return UsageError(absl::StrCat("application ", f.app, " deploys to ", absl::StrJoin(app.environment_ids(), ", "),
                                     ": name one with --env"));
    }
    env = app.environment_ids(0);
  }
  req.set_environment_id(env);
  if (!f.ref.empty()) req.mutable_revision()->set_ref(f.ref);
  else req.mutable_revision()->set_sha(f.sha);
  v1::PreviewPlanResponse resp;
  FERRY_RPC(*conn, "planner", absl::StrCat("preview ", f.app, " in ", env),
            conn->Planner().PreviewPlan(conn->Call(absl::Minutes(5)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(PlanJson(resp.plan()));
    return absl::OkStatus();
  }
  PrintPlanSummary(resp.plan(), out, state.now());
  if (PrintPlanDiff(resp.plan(), out) == 0) out.Line("no differences");
  return absl::OkStatus();
}

}  // namespace

void AddPlanCommands(CLI::App& root, CliState& state) {
  CLI::App* plan = Group(root, "plan", "Plans: what Ferry will change, before it changes it");
  auto lf = std::make_shared<ListFlags>();
  CLI::App* l = Leaf(*plan, state, "list", "List plans, newest first",
                     "  ferry plan list --state pending\n  ferry plan list --app hello --env prod -o json\n",
                     [&state, lf] { return List(state, *lf); });
  l->add_option("--app", lf->app, "Only this application");
  l->add_option("--env", lf->env, "Only this environment");
  l->add_option("--state", lf->states, "Only these states (pending, approved, executing, succeeded, failed, ...)")->delimiter(',');
  l->add_option("--limit", lf->limit, "How many")->capture_default_str();

  auto show_id = std::make_shared<std::string>();
  Leaf(*plan, state, "show", "A plan's summary and its per-object diff", "  ferry plan show plan-7\n",
       [&state, show_id] { return Show(state, *show_id); })
      ->add_option("plan", *show_id, "Plan id")
      ->required();

  for (bool approve : {true, false}) {
    auto df = std::make_shared<DecideFlags>();
    CLI::App* d = Leaf(*plan, state, approve ? "approve" : "reject",
                       approve ? "Approve a pending plan (as you; it then deploys)" : "Reject a pending plan",
                       approve ? "  ferry plan approve plan-7 --comment 'LGTM'\n" : "  ferry plan reject plan-7 --comment 'not today'\n",
                       [&state, df, approve] { return Decide(state, *df, approve); });
    d->add_option("plan", df->id, "Plan id")->required();
    d->add_option("--comment", df->comment, "Recorded with the decision");
  }

  auto pf = std::make_shared<PreviewFlags>();
  CLI::App* p = Leaf(*plan, state, "preview", "Plan a branch or commit against an environment without keeping it (pull requests)",
                     "  ferry plan preview hello --env prod --ref feature/new-greeting\n",
                     [&state, pf] { return Preview(state, *pf); });
  p->add_option("app", pf->app, "Application")->required();
  p->add_option("--env", pf->env, "Environment (needed when the application has several)");
  p->add_option("--ref", pf->ref, "Branch or full ref (a pull request's branch)");
  p->add_option("--sha", pf->sha, "Full commit sha");
}

}  // namespace ferry::cli
