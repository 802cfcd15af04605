// ferry config apply: reconcile applications and environments from a
// ferry.yaml in Git (the planner's ApplyDeclarativeConfig).

#include <unistd.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "cli/cli_state.h"
#include "cli/display_names.h"
#include "cli/exit_codes.h"
#include "common/status/status_macros.h"

namespace ferry::cli {
namespace {

struct ApplyFlags {
  std::string file, repo, path, ref = "main", commit;
  bool dry_run = false;
};

absl::Status Apply(CliState& state, const ApplyFlags& f) {
  if (!f.file.empty()) {
    // The planner reads declarations from Git only (that is what makes them
    // declarative and audited); a local file has to be pushed first.
    std::error_code ec;
    bool exists = std::filesystem::exists(f.file, ec);
    return UsageError(absl::StrCat(
        "ferry config apply reads ferry.yaml from Git, not from this machine", exists ? "" : " (and " + f.file + " does not exist)",
        ": commit and push ", f.file, ", then run `ferry config apply --repo REPO --path ", f.file,
        " [--ref BRANCH]` (`ferry repo list` names the repositories)"));
  }
  if (f.repo.empty()) return UsageError("ferry config apply needs --repo REPO (and --path, default ferry.yaml)");
  ASSIGN_OR_RETURN(Connection * conn, state.Connect());
  v1::ApplyDeclarativeConfigRequest req;
  req.mutable_source()->set_repository_id(f.repo);
  req.mutable_source()->set_ref(f.ref);
  req.mutable_source()->set_path(f.path);
  req.set_commit(f.commit);
  req.set_dry_run(f.dry_run);
  v1::ApplyDeclarativeConfigResponse resp;
  FERRY_RPC(*conn, "planner", absl::StrCat("apply ", f.path.empty() ? "ferry.yaml" : f.path, " of ", f.repo),
            conn->Planner().ApplyDeclarativeConfig(conn->Call(absl::Minutes(5)).get(), req, &resp));
  const Output& out = state.out();
  if (out.structured()) {
    for (const auto& c : resp.changes()) {
      nlohmann::json j = ToJson(c);
      j["commit"] = resp.commit();
      j["dry_run"] = f.dry_run;
      out.Emit(j);
    }
    return absl::OkStatus();
  }
  out.Line(absl::StrCat(f.dry_run ? "would apply " : "applied ", f.path.empty() ? "ferry.yaml" : f.path, " of ", f.repo,
                        " at ", ShortSha(resp.commit()), f.dry_run ? " (dry run: nothing changed)" : ""));
  Table t({{"KIND"}, {"NAME"}, {"CHANGE"}});
  int changed = 0;
  for (const auto& c : resp.changes()) {
    Color col = c.action() == v1::OBJECT_ACTION_CREATE ? Color::kGreen
                : c.action() == v1::OBJECT_ACTION_DELETE ? Color::kRed
                : c.action() == v1::OBJECT_ACTION_UPDATE ? Color::kYellow
                                                         : Color::kNone;
    std::string word = c.action() == v1::OBJECT_ACTION_NOOP ? "unchanged" : absl::AsciiStrToLower(ActionName(c.action()));
    if (c.action() != v1::OBJECT_ACTION_NOOP) ++changed;
    t.Add({c.kind(), c.id(), out.Paint(f.dry_run && c.action() != v1::OBJECT_ACTION_NOOP ? "would " + word : word, col)});
  }
  std::fputs(t.Render(out.wide()).c_str(), out.stream());
  out.Line(absl::StrCat(changed, " change", changed == 1 ? "" : "s",
                        f.dry_run ? "" : "; later commits touching the file are reconciled automatically"));
  return absl::OkStatus();
}

}  // namespace

void AddConfigCommands(CLI::App& root, CliState& state) {
  CLI::App* config = Group(root, "config", "Declarative configuration (ferry.yaml in Git)");
  auto f = std::make_shared<ApplyFlags>();
  CLI::App* a = Leaf(*config, state, "apply",
                     "Reconcile applications and environments from a ferry.yaml in Git, and keep following it",
                     "  ferry config apply --repo example --path ferry.yaml\n"
                     "  ferry config apply --repo example --path ferry.yaml --dry-run\n",
                     [&state, f] { return Apply(state, *f); });
  a->add_option("file", f->file, "(a local file: refused with what to do; the declaration lives in Git)");
  a->add_option("--repo", f->repo, "Repository holding the file");
  a->add_option("--path", f->path, "Path of the file in it (default ferry.yaml)");
  a->add_option("--ref", f->ref, "Branch or ref")->capture_default_str();
  a->add_option("--commit", f->commit, "Read this commit (default: the ref's accepted tip)");
  a->add_flag("--dry-run", f->dry_run, "Show what would change; change nothing");
}

}  // namespace ferry::cli
