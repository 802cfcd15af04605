// ferry repo add|list|get|update|rm|refresh|revisions|checks|report-check|pulls

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

struct RepoFlags {
  std::string id, url;
  std::vector<std::string> branches, tags;
  std::string poll, webhook_secret_file, webhook_secret_env, https_user, https_token_file, https_token_env;
  std::string ssh_key_file, known_hosts_file, signature_policy;
  std::vector<std::string> trusted_pgp_key_files, ssh_allowed_signers_files;
};

absl::StatusOr<std::string> Slurp(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The repository the flags describe, and the update mask of the fields given.
absl::Status Build(const RepoFlags& f, v1::Repository* r, std::vector<std::string>* mask) {
  r->set_id(f.id);
  if (!f.url.empty()) r->set_url(f.url), mask->push_back("url");
  if (!f.branches.empty()) {
    for (const auto& b : f.branches) r->add_branches(b);
    mask->push_back("branches");
  }
  if (!f.tags.empty()) {
    for (const auto& t : f.tags) r->add_tag_patterns(t);
    mask->push_back("tag_patterns");
  }
  if (!f.poll.empty()) {
    absl::Duration d;
    if (!absl::ParseDuration(f.poll, &d)) return UsageError("--poll " + f.poll + ": not a duration (e.g. 30s)");
    r->mutable_poll_interval()->set_seconds(absl::ToInt64Seconds(d));
    mask->push_back("poll_interval");
  }
  if (!f.webhook_secret_file.empty()) r->mutable_webhook_secret()->set_file(f.webhook_secret_file), mask->push_back("webhook_secret");
  else if (!f.webhook_secret_env.empty()) r->mutable_webhook_secret()->set_env(f.webhook_secret_env), mask->push_back("webhook_secret");
  if (!f.https_token_file.empty() || !f.https_token_env.empty()) {
    auto* h = r->mutable_credentials()->mutable_https_token();
    h->set_username(f.https_user);
    if (!f.https_token_file.empty()) h->mutable_token()->set_file(f.https_token_file);
    else h->mutable_token()->set_env(f.https_token_env);
    mask->push_back("credentials");
  } else if (!f.ssh_key_file.empty()) {
    auto* s = r->mutable_credentials()->mutable_ssh_key();
    s->set_private_key_file(f.ssh_key_file);
    s->set_known_hosts_file(f.known_hosts_file);
    mask->push_back("credentials");
  }
  if (!f.signature_policy.empty() || !f.trusted_pgp_key_files.empty() || !f.ssh_allowed_signers_files.empty()) {
    auto* p = r->mutable_signature_policy();
    if (f.signature_policy == "none" || f.signature_policy.empty()) p->set_mode(v1::SIGNATURE_MODE_NONE);
    else if (f.signature_policy == "head") p->set_mode(v1::SIGNATURE_MODE_HEAD);
    else if (f.signature_policy == "all") p->set_mode(v1::SIGNATURE_MODE_ALL);
    else return UsageError("--signature-policy " + f.signature_policy + ": use none, head or all");
    for (const auto& file : f.trusted_pgp_key_files) {
      ASSIGN_OR_RETURN(std::string key, Slurp(file));
      p->add_trusted_pgp_public_keys(key);
    }
    for (const auto& file : f.ssh_allowed_signers_files) {
      ASSIGN_OR_RETURN(std::string lines, Slurp(file));
      std::istringstream in(lines);
      for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line[0] != '#') p->add_ssh_allowed_signers(line);
      }
    }
    mask->push_back("signature_policy");
  }
  return absl::OkStatus();
}

void AddRepoFlags(CLI::App* c, RepoFlags& f) {
  c->add_option("--branch", f.branches, "Branches (or globs) to track; repeat or comma-separate (default main)")->delimiter(',');
  c->add_option("--tag", f.tags, "Tag globs to track, e.g. v*")->delimiter(',');
  c->add_option("--poll", f.poll, "Poll interval (default 60s)");
  c->add_option("--webhook-secret-file", f.webhook_secret_file, "Push webhook secret: a file in the repo-watcher's --secrets-dir");
  c->add_option("--webhook-secret-env", f.webhook_secret_env, "Push webhook secret: an environment variable of the repo-watcher");
  c->add_option("--https-user", f.https_user, "User name sent with an HTTPS token (default git)");
  c->add_option("--https-token-file", f.https_token_file, "HTTPS token: a file in the repo-watcher's --secrets-dir");
  c->add_option("--https-token-env", f.https_token_env, "HTTPS token: an environment variable of the repo-watcher");
  c->add_option("--ssh-key-file", f.ssh_key_file, "SSH private key file (in the repo-watcher's --secrets-dir)");
  c->add_option("--known-hosts-file", f.known_hosts_file, "known_hosts for SSH");
  c->add_option("--signature-policy", f.signature_policy, "Which commits must be signed: none, head, all");
  c->add_option("--trusted-pgp-key", f.trusted_pgp_key_files, "File of an ASCII-armored OpenPGP key to trust (repeatable)");
  c->add_option("--ssh-allowed-signers", f.ssh_allowed_signers_files, "File in git's allowed_signers format (repeatable)");
}

absl::Status Add(CliState& state, const RepoFlags& f) {
  v1::Repository r;
  std::vector<std::string> mask;
  RETURN_IF_ERROR(Build(f, &r, &mask));
  if (r.branches().empty() && r.tag_patterns().empty()) r.add_branches("main");
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::CreateRepositoryRequest req;
  *req.mutable_repository() = r;
  v1::Repository out;
  FERRY_RPC(*conn, "repo-watcher", "add repository " + f.id, conn->RepoWatcher().CreateRepository(conn->Call().get(), req, &out));
  if (state.out().structured()) state.out().Emit(out);
  else state.out().Line(absl::StrCat("repository ", out.id(), " added (", out.url(), ", ", absl::StrJoin(out.branches(), ","),
                                     "); `ferry repo refresh ", out.id(), "` fetches it now"));
  return absl::OkStatus();
}

absl::Status Update(CliState& state, const RepoFlags& f) {
  v1::UpdateRepositoryRequest req;
  std::vector<std::string> mask;
  RETURN_IF_ERROR(Build(f, req.mutable_repository(), &mask));
  if (mask.empty()) return UsageError("ferry repo update: nothing to change (give --url, --branch, --poll, ...)");
  for (const auto& m : mask) req.mutable_update_mask()->add_paths(m);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::Repository out;
  FERRY_RPC(*conn, "repo-watcher", "update repository " + f.id, conn->RepoWatcher().UpdateRepository(conn->Call().get(), req, &out));
  if (state.out().structured()) state.out().Emit(out);
  else state.out().Line(absl::StrCat("repository ", out.id(), " updated (", absl::StrJoin(mask, ", "), ")"));
  return absl::OkStatus();
}

absl::Status List(CliState& state) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListRepositoriesRequest req;
  req.set_page_size(1000);
  const Output& out = state.out();
  Table t({{"NAME"}, {"URL"}, {"TRACKS"}, {"POLL"}, {"SIGNATURES", true}, {"LAST CHECK", true}, {"STATUS"}});
  while (true) {
    v1::ListRepositoriesResponse resp;
    FERRY_RPC(*conn, "repo-watcher", "list repositories", conn->RepoWatcher().ListRepositories(conn->Call().get(), req, &resp));
    for (const auto& r : resp.repositories()) {
      if (out.structured()) {
        out.Emit(r);
        continue;
      }
      v1::GetRepositoryStatusRequest sreq;
      sreq.set_repository_id(r.id());
      v1::RepositoryStatus st;
      grpc::Status s = conn->RepoWatcher().GetRepositoryStatus(conn->Call().get(), sreq, &st);
      std::vector<std::string> tracks(r.branches().begin(), r.branches().end());
      for (const auto& tp : r.tag_patterns()) tracks.push_back("tags:" + tp);
      std::string status = !s.ok() ? "-" : st.last_error().empty() ? out.Paint("ok", Color::kGreen)
                                                                    : out.Paint(Truncate(st.last_error(), 60), Color::kRed);
      t.Add({r.id(), r.url(), absl::StrJoin(tracks, ","), r.has_poll_interval() ? absl::StrCat(r.poll_interval().seconds(), "s") : "60s",
             r.signature_policy().mode() <= v1::SIGNATURE_MODE_NONE ? "none"
                                                                     : absl::AsciiStrToLower(std::string(v1::SignatureMode_Name(r.signature_policy().mode())).substr(15)),
             s.ok() ? Age(st.last_check_time(), state.now()) + " ago" : "-", status});
    }
    if (resp.next_page_token().empty()) break;
    req.set_page_token(resp.next_page_token());
  }
  if (!out.structured()) {
    if (t.size() == 0) out.Line("no repositories: `ferry repo add NAME URL`");
    else std::fputs(t.Render(out.wide()).c_str(), out.stream());
  }
  return absl::OkStatus();
}

void PrintStatus(const v1::RepositoryStatus& st, const Output& out, absl::Time now) {
  out.Line(absl::StrCat("last check:    ", Age(st.last_check_time(), now), " ago; last fetch ", Age(st.last_fetch_time(), now),
                        " ago; next in ", IsSet(st.next_check_time()) ? Age(now, ToTime(st.next_check_time())) : "-"));
  if (!st.last_error().empty()) {
    out.Line(out.Paint(absl::StrCat("last error:    ", st.last_error(), " (", st.consecutive_failures(), " in a row, ",
                                    Age(st.last_error_time(), now), " ago)"),
                       Color::kRed));
  }
  if (!st.refs().empty()) {
    Table t({{"REF"}, {"TIP"}, {"ACCEPTED"}, {"MOVED"}});
    for (const auto& r : st.refs()) {
      t.Add({r.ref(), ShortSha(r.sha()), r.accepted_sha() == r.sha() ? ShortSha(r.accepted_sha())
                                                                     : out.Paint(ShortSha(r.accepted_sha()) + " (tip refused)", Color::kRed),
             Age(r.update_time(), now) + " ago"});
    }
    out.Line("");
    std::fputs(t.Render(out.wide()).c_str(), out.stream());
  }
}

absl::Status Get(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetRepositoryRequest req;
  req.set_id(id);
  v1::Repository r;
  FERRY_RPC(*conn, "repo-watcher", "read repository " + id, conn->RepoWatcher().GetRepository(conn->Call().get(), req, &r));
  v1::GetRepositoryStatusRequest sreq;
  sreq.set_repository_id(id);
  v1::RepositoryStatus st;
  grpc::Status s = conn->RepoWatcher().GetRepositoryStatus(conn->Call().get(), sreq, &st);
  const Output& out = state.out();
  if (out.structured()) {
    nlohmann::json j = ToJson(r);
    if (s.ok()) j["status"] = ToJson(st);
    out.Emit(j);
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("name:          ", r.id()));
  out.Line(absl::StrCat("url:           ", r.url()));
  out.Line(absl::StrCat("branches:      ", absl::StrJoin(r.branches(), ", "),
                        r.tag_patterns().empty() ? "" : absl::StrCat("; tags ", absl::StrJoin(r.tag_patterns(), ", "))));
  out.Line(absl::StrCat("poll:          ", r.has_poll_interval() ? absl::StrCat(r.poll_interval().seconds(), "s") : "60s",
                        r.has_webhook_secret() ? "; push webhooks on" : "; no webhook"));
  out.Line(absl::StrCat("signatures:    ", v1::SignatureMode_Name(r.signature_policy().mode())));
  if (s.ok()) PrintStatus(st, out, state.now());
  return absl::OkStatus();
}

absl::Status Remove(CliState& state, const std::string& id) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::DeleteRepositoryRequest req;
  req.set_id(id);
  v1::DeleteRepositoryResponse out;
  FERRY_RPC(*conn, "repo-watcher", "delete repository " + id, conn->RepoWatcher().DeleteRepository(conn->Call().get(), req, &out));
  state.out().Line(absl::StrCat("repository ", id, " deleted (its recorded revisions stay for history)"));
  return absl::OkStatus();
}

struct RefreshFlags {
  std::string id;
  bool no_wait = false;
};

absl::Status Refresh(CliState& state, const RefreshFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::RefreshRepositoryRequest req;
  req.set_repository_id(f.id);
  req.set_wait(!f.no_wait);
  v1::RefreshRepositoryResponse resp;
  FERRY_RPC(*conn, "repo-watcher", "refresh repository " + f.id,
            conn->RepoWatcher().RefreshRepository(conn->Call(absl::Minutes(5)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(resp.status());
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("repository ", f.id, f.no_wait ? ": check requested" : ": checked"));
  PrintStatus(resp.status(), out, absl::Now());
  if (!resp.status().last_error().empty()) return absl::UnavailableError("the check failed: " + resp.status().last_error());
  return absl::OkStatus();
}

struct RevisionsFlags {
  std::string id, ref;
  int limit = 20;
  bool rejected = false;
};

absl::Status Revisions(CliState& state, const RevisionsFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListRevisionsRequest req;
  req.set_repository_id(f.id);
  if (!f.ref.empty()) req.set_ref(f.ref.rfind("refs/", 0) == 0 ? f.ref : "refs/heads/" + f.ref);
  req.set_include_rejected(f.rejected);
  req.set_page_size(std::min(std::max(f.limit, 1), 1000));
  v1::ListRevisionsResponse resp;
  FERRY_RPC(*conn, "repo-watcher", "list revisions", conn->RepoWatcher().ListRevisions(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& r : resp.revisions()) out.Emit(r);
    return absl::OkStatus();
  }
  Table t({{"SHA"}, {"REF"}, {"AUTHOR"}, {"AGE"}, {"SUBJECT"}, {"SIGNATURE", true}, {"REPO", true}, {"STATE"}});
  for (const auto& r : resp.revisions()) {
    std::string st = r.ref_deleted() ? "ref deleted" : r.rejected() ? out.Paint("rejected", Color::kRed) : "accepted";
    t.Add({ShortSha(r.sha()), r.ref(), Truncate(r.author().name(), 20), Age(r.commit_time(), state.now()),
           Truncate(Subject(r.message()), out.wide() ? 80 : 50), SignatureName(r.signature_result()), r.repository_id(), st});
  }
  if (t.size() == 0) out.Line("no revisions recorded yet: `ferry repo refresh " + f.id + "`");
  else std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

const char* CheckStateName(v1::CheckState s) {
  switch (s) {
    case v1::CHECK_STATE_PENDING: return "pending";
    case v1::CHECK_STATE_SUCCESS: return "success";
    case v1::CHECK_STATE_FAILURE: return "failure";
    default: return "unspecified";
  }
}

struct ChecksFlags {
  std::string id, sha;
};

absl::Status Checks(CliState& state, const ChecksFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListChecksRequest req;
  req.set_repository_id(f.id);
  req.set_sha(f.sha);
  v1::ListChecksResponse resp;
  FERRY_RPC(*conn, "repo-watcher", "list checks", conn->RepoWatcher().ListChecks(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& c : resp.checks()) out.Emit(c);
    return absl::OkStatus();
  }
  Table t({{"CHECK"}, {"STATE"}, {"SOURCE"}, {"AGE"}, {"URL", true}, {"DESCRIPTION", true}});
  for (const auto& c : resp.checks()) {
    std::string st = CheckStateName(c.state());
    if (c.state() == v1::CHECK_STATE_FAILURE) st = out.Paint(st, Color::kRed);
    t.Add({Truncate(c.name(), 40), st, c.source(), Age(c.report_time(), state.now()), c.url(),
           Truncate(c.description(), 60)});
  }
  if (t.size() == 0) out.Line("no checks reported for " + ShortSha(f.sha) + " of " + f.id);
  else std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

struct ReportFlags {
  std::string id, sha, name, state, url, description;
};

absl::Status ReportCheck(CliState& state, const ReportFlags& f) {
  v1::ReportCheckRequest req;
  req.set_repository_id(f.id);
  req.set_sha(f.sha);
  req.set_name(f.name);
  const std::string s = absl::AsciiStrToLower(f.state);
  if (s == "pending") req.set_state(v1::CHECK_STATE_PENDING);
  else if (s == "success") req.set_state(v1::CHECK_STATE_SUCCESS);
  else if (s == "failure") req.set_state(v1::CHECK_STATE_FAILURE);
  else return UsageError("state " + f.state + ": use pending, success or failure");
  req.set_url(f.url);
  req.set_description(f.description);
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::CommitCheck resp;
  FERRY_RPC(*conn, "repo-watcher", "report check " + f.name,
            conn->RepoWatcher().ReportCheck(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(resp);
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("check ", resp.name(), " of ", ShortSha(resp.sha()), ": ", CheckStateName(resp.state())));
  return absl::OkStatus();
}

struct PullsFlags {
  std::string id;
  bool all = false;
};

absl::Status Pulls(CliState& state, const PullsFlags& f) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListPullRequestsRequest req;
  req.set_repository_id(f.id);
  req.set_include_closed(f.all);
  v1::ListPullRequestsResponse resp;
  FERRY_RPC(*conn, "repo-watcher", "list pull requests",
            conn->RepoWatcher().ListPullRequests(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& p : resp.pull_requests()) out.Emit(p);
    return absl::OkStatus();
  }
  Table t({{"REPO"}, {"NUMBER"}, {"STATE"}, {"HEAD"}, {"BASE"}, {"AUTHOR"}, {"TITLE"}, {"URL", true}});
  for (const auto& p : resp.pull_requests()) {
    std::string st = p.state() == v1::PULL_REQUEST_STATE_OPEN     ? "open"
                     : p.state() == v1::PULL_REQUEST_STATE_MERGED ? "merged"
                                                                  : "closed";
    std::string base = p.base_ref().rfind("refs/heads/", 0) == 0 ? p.base_ref().substr(11) : p.base_ref();
    t.Add({p.repository_id(), absl::StrCat(p.number()), st, ShortSha(p.head_sha()), base, Truncate(p.author(), 20),
           Truncate(p.title(), out.wide() ? 80 : 50), p.url()});
  }
  if (t.size() == 0) out.Line(f.all ? "no pull requests recorded" : "no open pull requests");
  else std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

}  // namespace

void AddRepoCommands(CLI::App& root, CliState& state) {
  CLI::App* repo = Group(root, "repo", "Git repositories Ferry watches");
  auto af = std::make_shared<RepoFlags>();
  CLI::App* a = Leaf(*repo, state, "add", "Register a repository",
                     "  ferry repo add example /srv/git/example.git --branch main --poll 30s\n"
                     "  ferry repo add app https://git.example.com/app.git --https-token-file git-token --signature-policy head --trusted-pgp-key release.asc\n",
                     [&state, af] { return Add(state, *af); });
  a->add_option("name", af->id, "Repository name (a DNS label)")->required();
  a->add_option("url", af->url, "Local path, file://, https://, ssh:// or git@host:path")->required();
  AddRepoFlags(a, *af);

  Leaf(*repo, state, "list", "List repositories and whether their last check worked", "  ferry repo list\n",
       [&state] { return List(state); });
  auto get_id = std::make_shared<std::string>();
  Leaf(*repo, state, "get", "One repository: settings, polling status, the tip of each ref", "  ferry repo get example\n",
       [&state, get_id] { return Get(state, *get_id); })
      ->add_option("name", *get_id, "Repository")
      ->required();
  auto uf = std::make_shared<RepoFlags>();
  CLI::App* u = Leaf(*repo, state, "update", "Change the settings given (others stay)",
                     "  ferry repo update example --poll 10s\n  ferry repo update example --branch main,release/*\n",
                     [&state, uf] { return Update(state, *uf); });
  u->add_option("name", uf->id, "Repository")->required();
  u->add_option("--url", uf->url, "New URL (credentials must be given again for another origin)");
  AddRepoFlags(u, *uf);
  auto rm_id = std::make_shared<std::string>();
  Leaf(*repo, state, "rm", "Delete a repository (its revisions stay for history)", "  ferry repo rm old\n",
       [&state, rm_id] { return Remove(state, *rm_id); })
      ->add_option("name", *rm_id, "Repository")
      ->required();
  auto rf = std::make_shared<RefreshFlags>();
  CLI::App* r = Leaf(*repo, state, "refresh", "Check the remote now (and fetch what moved)", "  ferry repo refresh example\n",
                     [&state, rf] { return Refresh(state, *rf); });
  r->add_option("name", rf->id, "Repository")->required();
  r->add_flag("--no-wait", rf->no_wait, "Ask for a check and return at once");
  auto vf = std::make_shared<RevisionsFlags>();
  CLI::App* v = Leaf(*repo, state, "revisions", "Commits Ferry recorded, newest first",
                     "  ferry repo revisions example\n  ferry repo revisions example --ref main --rejected -o wide\n",
                     [&state, vf] { return Revisions(state, *vf); });
  v->add_option("name", vf->id, "Repository (default: all)");
  v->add_option("--ref", vf->ref, "Only this branch or full ref");
  v->add_option("--limit", vf->limit, "How many")->capture_default_str();
  v->add_flag("--rejected", vf->rejected, "Include revisions the signature policy refused");
  auto cf = std::make_shared<ChecksFlags>();
  CLI::App* c = Leaf(*repo, state, "checks", "CI check results reported for a commit (latest per check)",
                     "  ferry repo checks example 3f2c9a1e0b7d4c6a8e5f1b2d3c4a5b6c7d8e9f01\n",
                     [&state, cf] { return Checks(state, *cf); });
  c->add_option("name", cf->id, "Repository")->required();
  c->add_option("sha", cf->sha, "Full commit sha")->required();
  auto pf = std::make_shared<ReportFlags>();
  CLI::App* p = Leaf(*repo, state, "report-check",
                     "Report a CI check result for a commit (needs the ci role: permission report-checks)",
                     "  ferry repo report-check example $GIT_COMMIT unit-tests success --url $BUILD_URL\n",
                     [&state, pf] { return ReportCheck(state, *pf); });
  p->add_option("name", pf->id, "Repository")->required();
  p->add_option("sha", pf->sha, "Full commit sha")->required();
  p->add_option("check", pf->name, "Check name, as environments' requiredChecks name it")->required();
  p->add_option("state", pf->state, "pending, success or failure")->required();
  p->add_option("--url", pf->url, "Link to the CI run (http or https)");
  p->add_option("--description", pf->description, "Short text");
  auto lf = std::make_shared<PullsFlags>();
  CLI::App* l = Leaf(*repo, state, "pulls", "Pull and merge requests learned from webhooks (open ones)",
                     "  ferry repo pulls\n  ferry repo pulls example --all\n",
                     [&state, lf] { return Pulls(state, *lf); });
  l->add_option("name", lf->id, "Repository (default: all)");
  l->add_flag("--all", lf->all, "Also closed and merged ones");
}

}  // namespace ferry::cli
