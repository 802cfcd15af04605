// ferry token create|list|revoke (API tokens; admins).

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

struct CreateFlags {
  std::string subject, description, ttl;
  std::vector<std::string> groups;
};

absl::Status Create(CliState& state, const CreateFlags& f) {
  v1::CreateTokenRequest req;
  req.set_subject(f.subject);
  for (const auto& g : f.groups) req.add_groups(g);
  req.set_description(f.description);
  if (!f.ttl.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(f.ttl, &d)) return UsageError("--ttl " + f.ttl + ": not a duration (e.g. 720h)");
    req.mutable_ttl()->set_seconds(absl::ToInt64Seconds(d));
  }
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::CreateTokenResponse resp;
  FERRY_RPC(*conn, "planner", "create a token for " + f.subject, conn->Access().CreateToken(conn->Call().get(), req, &resp));
  if (state.out().structured()) {
    state.out().Emit(resp);
    return absl::OkStatus();
  }
  // The secret on stdout alone, so `ferry token create x > x.token` works;
  // the rest on stderr.
  std::printf("%s\n", resp.secret().c_str());
  std::fprintf(stderr, "ferry: token %s for user:%s%s, expires %s. It is shown this once: store it now. "
               "Bind \"user:%s\" to a role in the access policy.\n",
               resp.token().id().c_str(), f.subject.c_str(),
               f.groups.empty() ? "" : absl::StrCat(" (groups ", absl::StrJoin(f.groups, ","), ")").c_str(),
               TimeText(resp.token().expire_time()).c_str(), f.subject.c_str());
  return absl::OkStatus();
}

struct ListFlags {
  std::string subject;
  bool all = false;
};

absl::Status List(CliState& state, const ListFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListTokensRequest req;
  req.set_subject(f.subject);
  req.set_include_inactive(f.all);
  req.set_page_size(1000);
  v1::ListTokensResponse resp;
  FERRY_RPC(*conn, "planner", "list tokens", conn->Access().ListTokens(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& t : resp.tokens()) out.Emit(t);
    return absl::OkStatus();
  }
  Table t({{"ID"}, {"SUBJECT"}, {"GROUPS"}, {"CREATED"}, {"EXPIRES"}, {"LAST USED"}, {"STATE"}, {"DESCRIPTION", true}});
  for (const auto& tok : resp.tokens()) {
    std::string st = IsSet(tok.revoke_time()) ? "revoked" : (IsSet(tok.expire_time()) && ToTime(tok.expire_time()) < state.now()) ? "expired" : "active";
    t.Add({tok.id(), tok.subject(), absl::StrJoin(tok.groups(), ","), Age(tok.create_time(), state.now()) + " ago",
           TimeText(tok.expire_time()), IsSet(tok.last_used_time()) ? Age(tok.last_used_time(), state.now()) + " ago" : "never", st,
           tok.description()});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

absl::Status Revoke(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::RevokeTokenRequest req;
  req.set_token_id(id);
  v1::RevokeTokenResponse resp;
  FERRY_RPC(*conn, "planner", "revoke token " + id, conn->Access().RevokeToken(conn->Call().get(), req, &resp));
  state.out().Line(absl::StrCat("token ", id, " of user:", resp.token().subject(), " revoked"));
  return absl::OkStatus();
}

}  // namespace

void AddTokenCommands(CLI::App& root, CliState& state) {
  CLI::App* token = Group(root, "token", "API tokens (admins)");
  auto cf = std::make_shared<CreateFlags>();
  CLI::App* c = Leaf(*token, state, "create", "Make an API token; its secret is printed once, on standard output",
                     "  ferry token create alice --group release-managers --ttl 720h > alice.token\n",
                     [&state, cf] { return Create(state, *cf); });
  c->add_option("subject", cf->subject, "The user it authenticates as")->required();
  c->add_option("--group", cf->groups, "Groups (repeat or comma-separate)")->delimiter(',');
  c->add_option("--description", cf->description, "What it is for");
  c->add_option("--ttl", cf->ttl, "Lifetime (default 90 days, at most 8760h)");
  auto lf = std::make_shared<ListFlags>();
  CLI::App* l = Leaf(*token, state, "list", "List tokens (never their secrets)", "  ferry token list --all\n",
                     [&state, lf] { return List(state, *lf); });
  l->add_option("--subject", lf->subject, "Only this user's");
  l->add_flag("--all", lf->all, "Include expired and revoked tokens");
  auto id = std::make_shared<std::string>();
  Leaf(*token, state, "revoke", "Revoke a token", "  ferry token revoke 0123456789ab\n", [&state, id] { return Revoke(state, *id); })
      ->add_option("id", *id, "Token id (the 12 hex characters after ferry_)")
      ->required();
}

}  // namespace ferry::cli
