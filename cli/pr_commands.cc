// ferry pr list|show: pull-request previews (docs/previews.md).

#include <map>
#include <memory>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/cli_state.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

const char* ChangeText(v1::PreviewChange c) {
  switch (c) {
    case v1::PREVIEW_CHANGE_APPLICATION_ADDED:
      return "added";
    case v1::PREVIEW_CHANGE_APPLICATION_REMOVED:
      return "removed";
    case v1::PREVIEW_CHANGE_DEFINITION:
      return "redefined";
    case v1::PREVIEW_CHANGE_RENDER_FAILED:
      return "render fails";
    default:
      return "changes";
  }
}

std::string Counts(const v1::PreviewEntry& e) {
  std::map<std::string, int> n;
  for (const auto& a : e.actions()) {
    switch (a.action()) {
      case v1::OBJECT_ACTION_CREATE:
        ++n["create"];
        break;
      case v1::OBJECT_ACTION_UPDATE:
        ++n["update"];
        break;
      case v1::OBJECT_ACTION_DELETE:
        ++n["delete"];
        break;
      default:
        break;
    }
  }
  std::vector<std::string> parts;
  for (const auto& [k, v] : n) parts.push_back(absl::StrCat(v, " ", k));
  return parts.empty() ? "-" : absl::StrJoin(parts, ", ");
}

std::string Holds(const v1::PreviewEntry& e) {
  std::vector<std::string> parts;
  for (const auto& h : e.holds()) parts.push_back(h.message());
  return parts.empty() ? "-" : absl::StrJoin(parts, "; ");
}

absl::Status List(CliState& state, const std::string& repo) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ListPullRequestPreviewsRequest req;
  req.set_repository_id(repo);
  v1::ListPullRequestPreviewsResponse resp;
  FERRY_RPC(*conn, "planner", "list pull-request previews of " + repo,
            conn->Planner().ListPullRequestPreviews(conn->Call().get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& p : resp.previews()) out.Emit(p);
    return absl::OkStatus();
  }
  if (resp.previews().empty()) {
    out.Line(absl::StrCat("no open pull request of ", repo, " has a preview"));
    return absl::OkStatus();
  }
  Table t({{"PR"}, {"HEAD"}, {"BASE"}, {"AFFECTED"}, {"ERRORS"}, {"TITLE", true}});
  for (const auto& p : resp.previews()) {
    std::set<std::string> apps;
    int failures = p.errors_size();
    for (const auto& e : p.entries()) {
      apps.insert(e.application_id());
      failures += !e.render_error().empty();
    }
    t.Add({absl::StrCat("#", p.number()), ShortSha(p.head_sha()), p.base_ref(),
           absl::StrCat(apps.size(), " apps, ", p.entries_size(), " app/env"), absl::StrCat(failures), p.title()});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  return absl::OkStatus();
}

absl::Status Show(CliState& state, const std::string& repo, int64_t number) {
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::GetPullRequestPreviewRequest req;
  req.set_repository_id(repo);
  req.set_number(number);
  v1::PullRequestPreview p;
  FERRY_RPC(*conn, "planner", absl::StrCat("read the preview of pull request ", number, " of ", repo),
            conn->Planner().GetPullRequestPreview(conn->Call().get(), req, &p));
  const Output& out = state.out();
  if (out.structured()) {
    out.Emit(p);
    return absl::OkStatus();
  }
  out.Line(absl::StrCat("pull request #", p.number(), " of ", repo, ": ", ShortSha(p.base_sha()), " (", p.base_ref(),
                        ") -> ", ShortSha(p.head_sha()), "; ", p.applications_compared(), " of ",
                        p.applications_considered(), " applications rendered at both commits"));
  for (const auto& e : p.errors()) out.Line(out.Paint("error: " + e, Color::kRed));
  if (p.entries().empty()) {
    out.Line("no application or environment is affected");
    return absl::OkStatus();
  }
  Table t({{"APPLICATION"}, {"ENVIRONMENT"}, {"CHANGE"}, {"OBJECTS"}, {"HOLDS"}});
  for (const auto& e : p.entries())
    t.Add({e.application_id(), e.environment_id(), ChangeText(e.change()), Counts(e), Holds(e)});
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  // Each application's diff once (the same in all its environments).
  std::set<std::string> shown;
  for (const auto& e : p.entries()) {
    if (!shown.insert(e.application_id()).second) continue;
    if (!e.render_error().empty()) out.Line(out.Paint(e.application_id() + ": " + e.render_error(), Color::kRed));
    for (const auto& a : e.actions())
      if (!a.unified_diff().empty()) out.Line(a.unified_diff());
  }
  return absl::OkStatus();
}

}  // namespace

void AddPrCommands(CLI::App& root, CliState& state) {
  CLI::App* pr = Group(root, "pr", "Pull-request previews: what each open pull request would change");
  auto list_repo = std::make_shared<std::string>();
  Leaf(*pr, state, "list", "The repository's open pull requests and what each affects", "  ferry pr list config\n",
       [&state, list_repo] { return List(state, *list_repo); })
      ->add_option("repository", *list_repo, "Repository")
      ->required();
  auto show_repo = std::make_shared<std::string>();
  auto show_number = std::make_shared<int64_t>(0);
  CLI::App* show = Leaf(*pr, state, "show", "One pull request's affected applications, holds and diffs",
                        "  ferry pr show config 42\n",
                        [&state, show_repo, show_number] { return Show(state, *show_repo, *show_number); });
  show->add_option("repository", *show_repo, "Repository")->required();
  show->add_option("number", *show_number, "Pull/merge request number")->required();
}

}  // namespace ferry::cli
