#include "services/planner/preview/blast_radius.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/concurrency/mutex.h"
#include "common/concurrency/parallel_for.h"
#include "common/status/status_macros.h"
#include "common/text/utf8.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/planner/declarative_config.h"
#include "services/planner/differ.h"
#include "services/planner/render_failure.h"
#include "services/planner/repo_path.h"

namespace ferry::planner {
namespace {

// The paths whose entry differs between two listings (added, removed, or
// another blob, mode, type or symlink target).
std::set<std::string> ChangedPaths(const std::vector<TreeEntry>& base, const std::vector<TreeEntry>& head) {
  std::map<std::string, const TreeEntry*> at_base;
  for (const TreeEntry& e : base) at_base[e.path] = &e;
  std::set<std::string> changed;
  for (const TreeEntry& e : head) {
    auto it = at_base.find(e.path);
    if (it == at_base.end()) {
      changed.insert(e.path);
      continue;
    }
    const TreeEntry& b = *it->second;
    if (b.blob_sha != e.blob_sha || b.mode != e.mode || b.type != e.type || b.symlink_target != e.symlink_target)
      changed.insert(e.path);
    at_base.erase(it);
  }
  for (const auto& [path, entry] : at_base) changed.insert(path);
  return changed;
}

bool Touches(const std::set<std::string>& changed, const std::vector<std::string>& roots) {
  for (const std::string& root : roots) {
    if (root.empty()) return !changed.empty();
    // Paths under the root, or the root itself (a file).
    for (auto it = changed.lower_bound(root); it != changed.end() && it->compare(0, root.size(), root) == 0; ++it)
      if (IsUnderRepoPath(*it, root)) return true;
  }
  return false;
}

std::string FailureText(const absl::Status& status) {
  if (IsRenderFailure(status)) return text::SanitizeUtf8(ToPlanFailure(status).message());
  return text::SanitizeUtf8(std::string(status.message()));
}

// One application as the base and the head define it.
struct Candidate {
  std::optional<v1::Application> base;
  std::optional<v1::Application> head;
  v1::PreviewChange forced = v1::PREVIEW_CHANGE_UNSPECIFIED;  // set by ferry.yaml
};

// The result of comparing one application.
struct Compared {
  bool compared = false;
  bool affected = false;
  v1::PreviewChange change = v1::PREVIEW_CHANGE_UNSPECIFIED;
  std::vector<v1::PlanAction> actions;
  std::string render_error;
  std::string base_render_error;
};

}  // namespace

std::vector<v1::PreviewHold> PreviewHolds(const v1::Application& app, const v1::Environment& env,
                                          const ApprovalPolicy* approvals, absl::Time now) {
  std::vector<v1::PreviewHold> holds;
  auto add = [&](v1::HoldReason reason, std::string message) {
    v1::PreviewHold h;
    h.set_reason(reason);
    h.set_message(std::move(message));
    holds.push_back(std::move(h));
  };
  if (env.approval() != v1::APPROVAL_POLICY_AUTO) {
    int required = approvals == nullptr ? 1 : std::max(1, approvals->RuleFor(env.id()).required);
    std::string rule;
    if (approvals != nullptr) {
      auth::ApprovalRule r = approvals->RuleFor(env.id());
      if (r.distinct_from_author) rule += ", not by the commit's author";
      if (r.distinct_from_requester) rule += ", not by the requester";
    }
    add(v1::HOLD_REASON_AWAITING_APPROVAL,
        absl::StrCat(required, required == 1 ? " approval" : " approvals", rule, " (approval policy manual)"));
  } else if (!app.sync_policy().automated()) {
    add(v1::HOLD_REASON_AWAITING_APPROVAL, "not automated: deploys when someone plans it (syncPolicy.automated off)");
  }
  if (!env.sync_windows().empty()) {
    WindowDecision w = EvaluateSyncWindows(env.sync_windows(), now);
    add(v1::HOLD_REASON_SYNC_WINDOW_CLOSED,
        w.open ? absl::StrCat(env.sync_windows_size(), " sync window(s); open now") : w.message);
  }
  if (!env.promote_from().empty())
    add(v1::HOLD_REASON_PROMOTION_GATE, absl::StrCat("deploys after the commit is healthy in \"", env.promote_from(), "\""));
  if (!app.depends_on().empty())
    add(v1::HOLD_REASON_DEPENDENCY, absl::StrCat("after the plans of ", absl::StrJoin(app.depends_on(), ", ")));
  if (!env.required_checks().empty())
    add(v1::HOLD_REASON_CHECKS_PENDING, absl::StrCat("required checks: ", absl::StrJoin(env.required_checks(), ", ")));
  return holds;
}

BlastRadius::BlastRadius(CatalogStore* catalog, RenderStore* renders, SnapshotRepoSource* snapshot, Renderer* renderer,
                         const ApprovalPolicy* approvals, const Clock* clock, BlastRadiusOptions options)
    : catalog_(catalog),
      renders_(renders),
      snapshot_(snapshot),
      renderer_(renderer),
      approvals_(approvals),
      clock_(clock),
      options_(std::move(options)) {}

absl::StatusOr<v1::PullRequestPreview> BlastRadius::Compute(const v1::PullRequest& pr) {
  if (pr.repository_id().empty()) return absl::InvalidArgumentError("pull_request.repository_id: is required");
  if (pr.number() <= 0) return absl::InvalidArgumentError("pull_request.number: must be positive");
  if (pr.head_sha().empty()) return absl::InvalidArgumentError("pull_request.head_sha: is required");
  if (pr.base_sha().empty()) return absl::InvalidArgumentError("pull_request.base_sha: is required");
  if (pr.base_ref().empty()) return absl::InvalidArgumentError("pull_request.base_ref: is required");
  const std::string& repo = pr.repository_id();
  const std::string base_ref = FullRefName(pr.base_ref());

  v1::PullRequestPreview preview;
  preview.set_repository_id(repo);
  preview.set_number(pr.number());
  preview.set_title(pr.title());
  preview.set_url(pr.url());
  preview.set_head_ref(pr.head_ref());
  preview.set_head_sha(pr.head_sha());
  preview.set_base_ref(base_ref);
  preview.set_base_sha(pr.base_sha());
  const absl::Time now = clock_->Now();
  preview.mutable_compute_time()->set_seconds(absl::ToUnixSeconds(now));

  // What changed: the two trees compared.
  ASSIGN_OR_RETURN(auto base_tree, snapshot_->Listing(repo, pr.base_sha()));
  ASSIGN_OR_RETURN(auto head_tree, snapshot_->Listing(repo, pr.head_sha()));
  const std::set<std::string> changed = ChangedPaths(*base_tree, *head_tree);

  // The applications deploying the base branch, and the environments.
  ASSIGN_OR_RETURN(std::vector<v1::Application> apps, catalog_->ListApplications());
  ASSIGN_OR_RETURN(std::vector<v1::Environment> envs, catalog_->ListEnvironments());
  std::map<std::string, v1::Environment> env_by_id;
  for (auto& e : envs) env_by_id[e.id()] = std::move(e);
  std::map<std::string, Candidate> candidates;
  for (auto& a : apps) {
    if (a.repository_id() != repo || FullRefName(a.ref()) != base_ref) continue;
    Candidate& c = candidates[a.id()];
    c.base = a;
    c.head = std::move(a);
  }

  // ferry.yaml files of this branch that the change touches.
  ASSIGN_OR_RETURN(std::vector<DeclarationSourceRecord> sources, catalog_->ListDeclarationSources());
  for (const DeclarationSourceRecord& rec : sources) {
    if (rec.source.repository_id() != repo || FullRefName(rec.source.ref()) != base_ref) continue;
    const std::string file = rec.source.path().empty() ? "ferry.yaml" : rec.source.path();
    if (!changed.count(file)) continue;
    auto parse = [&](const std::string& sha) -> absl::StatusOr<std::optional<DeclaredConfig>> {
      absl::StatusOr<std::vector<TreeEntry>> read = snapshot_->ReadTree(repo, sha, file, false);
      if (absl::IsNotFound(read.status())) return std::optional<DeclaredConfig>();
      if (!read.ok()) return read.status();
      if (read->empty() || read->front().path != file)
        return absl::InvalidArgumentError(absl::StrCat(file, ": is not a file"));
      ASSIGN_OR_RETURN(DeclaredConfig parsed, ParseDeclarativeConfig(read->front().data, file, repo, base_ref,
                                                                     options_.parse_limits, options_.window_limits));
      return std::optional<DeclaredConfig>(std::move(parsed));
    };
    absl::StatusOr<std::optional<DeclaredConfig>> at_head = parse(pr.head_sha());
    if (!at_head.ok()) {
      if (absl::IsUnavailable(at_head.status())) return at_head.status();
      preview.add_errors(text::SanitizeUtf8(std::string(at_head.status().message())));
      continue;
    }
    absl::StatusOr<std::optional<DeclaredConfig>> at_base = parse(pr.base_sha());
    if (absl::IsUnavailable(at_base.status())) return at_base.status();
    std::map<std::string, v1::Application> before, after;
    if (at_base.ok() && *at_base)
      for (const auto& a : (*at_base)->applications) before[a.id()] = a;
    if (*at_head)
      for (const auto& a : (*at_head)->applications) after[a.id()] = a;
    if (*at_head)
      for (const auto& e : (*at_head)->environments) env_by_id[e.id()] = e;
    for (const auto& [id, a] : before) {
      if (after.count(id)) continue;
      Candidate& c = candidates[id];
      if (!c.base) c.base = a;
      c.head.reset();
      c.forced = v1::PREVIEW_CHANGE_APPLICATION_REMOVED;
    }
    for (const auto& [id, a] : after) {
      Candidate& c = candidates[id];
      auto was = before.find(id);
      if (!c.base) {
        c.forced = v1::PREVIEW_CHANGE_APPLICATION_ADDED;
      } else if (was == before.end() || !google::protobuf::util::MessageDifferencer::Equals(was->second, a)) {
        c.forced = v1::PREVIEW_CHANGE_DEFINITION;
      }
      if (!c.head || c.forced != v1::PREVIEW_CHANGE_UNSPECIFIED) c.head = a;
    }
  }
  preview.set_applications_considered(static_cast<int>(candidates.size()));

  // Compare each application: (1) in parallel, the prefilter, the head's
  // inputs, and the renders the render cache has; (2) the missing renders,
  // Kustomize ones batched per commit (Renderer::RenderBatch: one kubectl
  // run for several applications), spread over the workers; (3) in
  // parallel, the diffs.
  std::vector<const std::pair<const std::string, Candidate>*> order;
  for (const auto& entry : candidates) order.push_back(&entry);
  std::vector<Compared> results(order.size());
  using Render = absl::StatusOr<std::vector<v1::Manifest>>;
  struct Work {
    std::optional<absl::StatusOr<RenderInputs>> inputs[2];  // [0] base, [1] head; unset: no such side
    std::optional<Render> render[2];                        // unset: to render
  };
  std::vector<Work> work(order.size());
  const std::string* shas[2] = {&pr.base_sha(), &pr.head_sha()};
  absl::Status failed = concurrency::ParallelFor(order.size(), options_.concurrency, [&](size_t i) -> absl::Status {
    const Candidate& c = order[i]->second;
    Work& w = work[i];
    // Inputs at the base: the prefilter.
    if (c.base) {
      w.inputs[0] = renderer_->CollectInputs(*c.base, pr.base_sha());
      if (!w.inputs[0]->ok() && !IsRenderFailure(w.inputs[0]->status())) return w.inputs[0]->status();
      if (c.forced == v1::PREVIEW_CHANGE_UNSPECIFIED && w.inputs[0]->ok() && !Touches(changed, (*w.inputs[0])->roots)) {
        w.inputs[0].reset();  // passed: nothing to render
        return absl::OkStatus();
      }
    }
    results[i].compared = true;
    if (c.head) {
      w.inputs[1] = renderer_->CollectInputs(*c.head, pr.head_sha());
      if (!w.inputs[1]->ok() && !IsRenderFailure(w.inputs[1]->status())) return w.inputs[1]->status();
    }
    if (c.forced == v1::PREVIEW_CHANGE_UNSPECIFIED && w.inputs[0] && w.inputs[1] && w.inputs[0]->ok() &&
        w.inputs[1]->ok() && (*w.inputs[0])->cache_key == (*w.inputs[1])->cache_key) {
      w.inputs[0].reset();  // the same files: the same render
      w.inputs[1].reset();
      return absl::OkStatus();
    }
    for (int side = 0; side < 2; ++side) {
      if (!w.inputs[side]) continue;
      if (!w.inputs[side]->ok()) {
        w.render[side] = w.inputs[side]->status();
        continue;
      }
      ASSIGN_OR_RETURN(std::optional<std::vector<v1::Manifest>> cached,
                       renders_->GetCachedRender((*w.inputs[side])->cache_key));
      if (cached) w.render[side] = std::move(*cached);
    }
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(failed);

  // The renders still missing, in units of work: per commit, Kustomize
  // applications in batches of about (their number / workers), at most
  // kMaxBatch; the others one by one.
  constexpr size_t kMaxBatch = 16;
  struct Job {
    size_t i;
    int side;
  };
  std::vector<std::vector<Job>> units;
  for (int side = 0; side < 2; ++side) {
    std::vector<Job> kustomize;
    for (size_t i = 0; i < order.size(); ++i) {
      const Work& w = work[i];
      if (!w.inputs[side] || w.render[side]) continue;
      const Candidate& c = order[i]->second;
      const v1::Application& app = side == 0 ? *c.base : *c.head;
      if (app.render_method() == v1::RENDER_METHOD_KUSTOMIZE) {
        kustomize.push_back({i, side});
      } else {
        units.push_back({{i, side}});
      }
    }
    const size_t workers = static_cast<size_t>(std::max(1, options_.concurrency));
    const size_t size = std::clamp<size_t>((kustomize.size() + workers - 1) / workers, 1, kMaxBatch);
    for (size_t k = 0; k < kustomize.size(); k += size)
      units.emplace_back(kustomize.begin() + k, kustomize.begin() + std::min(kustomize.size(), k + size));
  }
  failed = concurrency::ParallelFor(units.size(), options_.concurrency, [&](size_t u) -> absl::Status {
    const std::vector<Job>& jobs = units[u];
    std::vector<Renderer::BatchItem> items;
    for (const Job& j : jobs) {
      const Candidate& c = order[j.i]->second;
      items.push_back({j.side == 0 ? &*c.base : &*c.head, &**work[j.i].inputs[j.side]});
    }
    std::vector<Render> rendered = renderer_->RenderBatch(items, *shas[jobs.front().side]);
    for (size_t k = 0; k < jobs.size(); ++k) {
      Render& r = rendered[k];
      if (!r.ok() && !IsRenderFailure(r.status())) return r.status();
      if (r.ok()) RETURN_IF_ERROR(renders_->PutCachedRender(items[k].inputs->cache_key, *r));
      work[jobs[k].i].render[jobs[k].side] = std::move(r);
    }
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(failed);

  failed = concurrency::ParallelFor(order.size(), options_.concurrency, [&](size_t i) -> absl::Status {
    const Candidate& c = order[i]->second;
    Work& w = work[i];
    Compared& out = results[i];
    if (!w.render[0] && !w.render[1]) return absl::OkStatus();  // passed by the prefilter, or equal inputs
    std::vector<v1::Manifest> before, after;
    bool base_ok = true, head_ok = true;
    if (w.render[0]) {
      if (w.render[0]->ok()) {
        before = std::move(**w.render[0]);
      } else {
        out.base_render_error = FailureText(w.render[0]->status());
        base_ok = false;
      }
    }
    if (w.render[1]) {
      if (w.render[1]->ok()) {
        after = std::move(**w.render[1]);
      } else {
        out.render_error = FailureText(w.render[1]->status());
        head_ok = false;
      }
    }
    if (head_ok) {
      std::vector<v1::LiveObject> live;
      for (const v1::Manifest& m : before) {
        v1::LiveObject o;
        *o.mutable_object() = m.object();
        o.set_live_json(m.json());
        o.set_applied_json(m.json());
        live.push_back(std::move(o));
      }
      DiffOptions diff;
      diff.prune = true;  // objects the head no longer renders are deleted by a pruning sync
      const v1::Application& def = c.head ? *c.head : *c.base;
      diff.ignore.assign(def.ignore_differences().begin(), def.ignore_differences().end());
      for (v1::PlanAction& a : DiffObjects(after, live, diff))
        if (a.action() != v1::OBJECT_ACTION_NOOP) out.actions.push_back(std::move(a));
    }
    if (c.forced != v1::PREVIEW_CHANGE_UNSPECIFIED) {
      out.change = c.forced;
    } else if (!head_ok) {
      out.change = v1::PREVIEW_CHANGE_RENDER_FAILED;
    } else if (!out.actions.empty() || !base_ok) {
      out.change = v1::PREVIEW_CHANGE_MANIFESTS;
    } else {
      return absl::OkStatus();  // inputs changed, renders equal (e.g. a comment in a base)
    }
    if (c.forced != v1::PREVIEW_CHANGE_UNSPECIFIED && !head_ok) out.change = v1::PREVIEW_CHANGE_RENDER_FAILED;
    out.affected = true;
    return absl::OkStatus();
  });
  RETURN_IF_ERROR(failed);

  int compared = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const Compared& r = results[i];
    compared += r.compared;
    if (!r.affected) continue;
    const Candidate& c = order[i]->second;
    const v1::Application& def = c.head ? *c.head : *c.base;
    std::vector<std::string> env_ids(def.environment_ids().begin(), def.environment_ids().end());
    std::sort(env_ids.begin(), env_ids.end());
    env_ids.erase(std::unique(env_ids.begin(), env_ids.end()), env_ids.end());
    for (const std::string& env_id : env_ids) {
      v1::PreviewEntry* e = preview.add_entries();
      e->set_application_id(order[i]->first);
      e->set_environment_id(env_id);
      e->set_change(r.change);
      for (const auto& a : r.actions) *e->add_actions() = a;
      e->set_render_error(r.render_error);
      e->set_base_render_error(r.base_render_error);
      if (!c.head) continue;  // removed: nothing will deploy
      auto env = env_by_id.find(env_id);
      if (env == env_by_id.end()) {
        v1::PreviewHold* h = e->add_holds();
        h->set_reason(v1::HOLD_REASON_UNSPECIFIED);
        h->set_message(absl::StrCat("environment \"", env_id, "\" does not exist"));
        continue;
      }
      for (auto& h : PreviewHolds(def, env->second, approvals_, now)) *e->add_holds() = std::move(h);
    }
  }
  preview.set_applications_compared(compared);
  return preview;
}

}  // namespace ferry::planner
