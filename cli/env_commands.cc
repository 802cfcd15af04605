// ferry env list|get|create|rm

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

std::string Target(const v1::Environment& e) {
  if (e.target().has_host()) return "host:" + e.target().host().root_dir();
  if (e.target().kind() == v1::TARGET_KIND_KUBERNETES) return "kubernetes";
  if (e.target().kind() == v1::TARGET_KIND_TERRAFORM) {
    return e.target().terraform().state() == v1::TERRAFORM_STATE_CONFIGURED ? "terraform:configured" : "terraform:pg";
  }
  if (e.target().kind() == v1::TARGET_KIND_ANSIBLE) {
    return e.target().ansible().connection() == v1::ANSIBLE_CONNECTION_SSH ? "ansible:ssh" : "ansible:local";
  }
  return "-";
}

std::string Windows(const v1::Environment& e) {
  std::vector<std::string> w;
  for (const auto& s : e.sync_windows()) {
    w.push_back(absl::StrCat(s.kind() == v1::SYNC_WINDOW_KIND_DENY ? "deny " : "allow ", "'", s.schedule(), "' for ",
                             s.duration().seconds() / 60, "m", s.time_zone().empty() ? "" : " " + s.time_zone()));
  }
  return w.empty() ? "always open" : absl::StrJoin(w, "; ");
}

absl::Status List(CliState& state) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListEnvironmentsRequest req;
  req.set_page_size(1000);
  const Output& out = state.out();
  Table t({{"NAME"}, {"TARGET"}, {"APPROVAL"}, {"PROMOTE FROM"}, {"SYNC WINDOWS", true}, {"DECLARED IN", true}});
  while (true) {
    v1::ListEnvironmentsResponse resp;
    FERRY_RPC(*conn, "planner", "list environments", conn->Planner().ListEnvironments(conn->Call().get(), req, &resp));
    for (const auto& e : resp.environments()) {
      if (out.structured()) {
        out.Emit(e);
        continue;
      }
      t.Add({e.id(), Target(e), ApprovalName(e.approval()), e.promote_from().empty() ? "-" : e.promote_from(), Windows(e),
             e.has_declared_by() ? absl::StrCat(e.declared_by().repository_id(), ":", e.declared_by().path()) : "-"});
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  if (!out.structured()) {
    if (t.size() == 0) out.Line("no environments: `ferry env create NAME --host-root DIR`");
    else std::fputs(t.Render(out.wide()).c_str(), out.stream());
  }
  return absl::OkStatus();
}

absl::Status Get(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetEnvironmentRequest req;
  req.set_id(id);
  v1::Environment e;
  FERRY_RPC(*conn, "planner", "read environment " + id, conn->Planner().GetEnvironment(conn->Call().get(), req, &e));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(e);
    return absl::OkStatus();
  }
  out.Line("name:          " + e.id());
  out.Line("target:        " + Target(e));
  out.Line("approval:      " + ApprovalName(e.approval()));
  out.Line("promote from:  " + (e.promote_from().empty() ? std::string("-") : e.promote_from()));
  out.Line("sync windows:  " + Windows(e));
  if (e.has_declared_by()) {
    out.Line(absl::StrCat("declared in:   ", e.declared_by().repository_id(), " ", e.declared_by().path(), " @ ",
                          ShortSha(e.declared_by().commit())));
  }
  return absl::OkStatus();
}

struct CreateFlags {
  std::string id, host_root, approval = "manual", promote_from;
};

absl::Status Create(CliState& state, const CreateFlags& f) {
  v1::Environment e;
  e.set_id(f.id);
  e.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
  e.mutable_target()->mutable_host()->set_root_dir(f.host_root);
  if (f.approval == "auto") e.set_approval(v1::APPROVAL_POLICY_AUTO);
  else if (f.approval == "manual") e.set_approval(v1::APPROVAL_POLICY_MANUAL);
  else return UsageError("--approval " + f.approval + ": use auto or manual");
  e.set_promote_from(f.promote_from);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::CreateEnvironmentRequest req;
  *req.mutable_environment() = e;
  v1::Environment out;
  FERRY_RPC(*conn, "planner", "create environment " + f.id, conn->Planner().CreateEnvironment(conn->Call().get(), req, &out));
  if (state.out().structured()) state.out().Emit(out);
  else state.out().Line(absl::StrCat("environment ", out.id(), " created (", Target(out), ", approval ", ApprovalName(out.approval()), ")"));
  return absl::OkStatus();
}

absl::Status Remove(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::DeleteEnvironmentRequest req;
  req.set_id(id);
  v1::DeleteEnvironmentResponse out;
  grpc::Status s = conn->Planner().DeleteEnvironment(conn->Call().get(), req, &out);
  if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
    return absl::FailedPreconditionError(absl::StrCat("cannot delete environment ", id, ": ", s.error_message(),
                                                      " (`ferry app list --env ", id, "` shows who uses it)"));
  }
  FERRY_RPC(*conn, "planner", "delete environment " + id, s);
  state.out().Line(absl::StrCat("environment ", id, " deleted"));
  return absl::OkStatus();
}

}  // namespace

void AddEnvCommands(CLI::App& root, CliState& state) {
  CLI::App* env = Group(root, "env", "Environments: where applications deploy, and their approval policy");
  Leaf(*env, state, "list", "List environments", "  ferry env list -o wide\n", [&state] { return List(state); });
  auto get_id = std::make_shared<std::string>();
  Leaf(*env, state, "get", "One environment", "  ferry env get prod\n", [&state, get_id] { return Get(state, *get_id); })
      ->add_option("name", *get_id, "Environment")
      ->required();
  auto cf = std::make_shared<CreateFlags>();
  CLI::App* c = Leaf(*env, state, "create", "Create an environment on this machine's host target",
                     "  ferry env create staging --host-root /srv/ferry/staging --approval auto\n"
                     "  ferry env create prod --host-root /srv/ferry/prod --promote-from staging\n",
                     [&state, cf] { return Create(state, *cf); });
  c->add_option("name", cf->id, "Environment name (a DNS label)")->required();
  c->add_option("--host-root", cf->host_root, "Absolute folder the host target deploys under")->required();
  c->add_option("--approval", cf->approval, "auto or manual")->capture_default_str();
  c->add_option("--promote-from", cf->promote_from, "Environment a revision must be healthy in first");
  auto rm_id = std::make_shared<std::string>();
  Leaf(*env, state, "rm", "Delete an environment no application uses", "  ferry env rm staging\n",
       [&state, rm_id] { return Remove(state, *rm_id); })
      ->add_option("name", *rm_id, "Environment")
      ->required();
}

}  // namespace ferry::cli
