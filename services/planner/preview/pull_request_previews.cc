#include "services/planner/preview/pull_request_previews.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/logging/logger.h"
#include "common/status/status_macros.h"

namespace ferry::planner {
namespace {

const char* ActionName(v1::ObjectAction a) {
  switch (a) {
    case v1::OBJECT_ACTION_CREATE:
      return "create";
    case v1::OBJECT_ACTION_UPDATE:
      return "update";
    case v1::OBJECT_ACTION_DELETE:
      return "delete";
    default:
      return "no-op";
  }
}

const char* ChangeName(v1::PreviewChange c) {
  switch (c) {
    case v1::PREVIEW_CHANGE_APPLICATION_ADDED:
      return "added by ferry.yaml";
    case v1::PREVIEW_CHANGE_APPLICATION_REMOVED:
      return "removed by ferry.yaml";
    case v1::PREVIEW_CHANGE_DEFINITION:
      return "redefined by ferry.yaml";
    case v1::PREVIEW_CHANGE_RENDER_FAILED:
      return "render fails";
    default:
      return "manifests change";
  }
}

// Markdown-inert text: no table breaks, no HTML, one line.
std::string Cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|' || c == '<' || c == '>' || c == '`' || c == '\n' || c == '\r') {
      out += c == '\n' || c == '\r' ? ' ' : '_';
    } else {
      out += c;
    }
  }
  if (out.size() > 300) out = out.substr(0, 300) + "...";
  return out;
}

}  // namespace

std::string PreviewCommentBody(const v1::PullRequestPreview& preview, size_t max_bytes) {
  std::string body = "<!-- ferry-preview -->\n### Ferry preview\n\n";
  absl::StrAppend(&body, "Comparing `", preview.base_sha().substr(0, 12), "` (", Cell(preview.base_ref()), ") with `",
                  preview.head_sha().substr(0, 12), "`: ", preview.applications_considered(),
                  " applications considered, ", preview.applications_compared(), " rendered at both commits.\n\n");
  for (const std::string& e : preview.errors()) absl::StrAppend(&body, "- **error:** ", Cell(e), "\n");
  if (preview.entries().empty()) {
    absl::StrAppend(&body, "No application or environment is affected.\n");
    return body;
  }
  absl::StrAppend(&body, "| Application | Environment | Change | Objects | Holds |\n|---|---|---|---|---|\n");
  std::string truncated;
  for (const v1::PreviewEntry& e : preview.entries()) {
    std::map<std::string, int> counts;
    for (const auto& a : e.actions()) ++counts[ActionName(a.action())];
    std::string objects;
    for (const auto& [name, n] : counts) absl::StrAppend(&objects, objects.empty() ? "" : ", ", n, " ", name);
    if (!e.render_error().empty()) absl::StrAppend(&objects, objects.empty() ? "" : "; ", "error: ", e.render_error());
    std::string holds;
    for (const auto& h : e.holds()) absl::StrAppend(&holds, holds.empty() ? "" : "; ", h.message());
    std::string row = absl::StrCat("| ", Cell(e.application_id()), " | ", Cell(e.environment_id()), " | ",
                                   ChangeName(e.change()), " | ", Cell(objects.empty() ? "-" : objects), " | ",
                                   Cell(holds.empty() ? "-" : holds), " |\n");
    if (body.size() + row.size() + 200 > max_bytes) {
      truncated = "\n(more entries: see `ferry pr show`)\n";
      break;
    }
    body += row;
  }
  body += truncated;
  absl::StrAppend(&body, "\nPer-object diffs: `ferry pr show ", Cell(preview.repository_id()), " ", preview.number(),
                  "`.\n");
  return body;
}

PullRequestPreviews::PullRequestPreviews(BlastRadius* radius, PreviewStore* store, PreviewCommenter* commenter)
    : radius_(radius), store_(store), commenter_(commenter) {}

absl::Status PullRequestPreviews::HandleEvent(const v1::WatchReviewEventsResponse& event) {
  if (!event.has_pull_request()) return absl::OkStatus();
  const v1::PullRequest& pr = event.pull_request();
  if (pr.state() != v1::PULL_REQUEST_STATE_OPEN) {
    RETURN_IF_ERROR(store_->DeletePreview(pr.repository_id(), pr.number()));
    logging::Info("pull-request preview removed", {{"repository", pr.repository_id()}, {"number", pr.number()}});
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::optional<v1::PullRequestPreview> stored, store_->GetPreview(pr.repository_id(), pr.number()));
  if (stored && stored->head_sha() == pr.head_sha() && stored->base_sha() == pr.base_sha() &&
      stored->comment_error().empty())
    return absl::OkStatus();
  ASSIGN_OR_RETURN(v1::PullRequestPreview preview, radius_->Compute(pr));
  if (stored) preview.set_comment_id(stored->comment_id());
  if (commenter_ != nullptr) {
    absl::StatusOr<std::string> id =
        commenter_->Upsert(pr.repository_id(), pr.number(), preview.comment_id(), PreviewCommentBody(preview));
    if (id.ok()) {
      preview.set_comment_id(*id);
    } else if (!absl::IsFailedPrecondition(id.status())) {
      preview.set_comment_error(std::string(id.status().message()));
      logging::Warn("cannot post the pull-request preview",
                    {{"repository", pr.repository_id()}, {"number", pr.number()}, {"error", id.status().ToString()}});
    }
  }
  RETURN_IF_ERROR(store_->PutPreview(preview));
  logging::Info("pull-request preview computed", {{"repository", pr.repository_id()},
                                                  {"number", pr.number()},
                                                  {"head", pr.head_sha()},
                                                  {"entries", preview.entries_size()}});
  return absl::OkStatus();
}

absl::StatusOr<v1::ListPullRequestPreviewsResponse> PullRequestPreviews::List(
    const v1::ListPullRequestPreviewsRequest& request) {
  if (request.repository_id().empty()) return absl::InvalidArgumentError("repository_id: is required");
  ASSIGN_OR_RETURN(std::vector<v1::PullRequestPreview> previews, store_->ListPreviews(request.repository_id()));
  v1::ListPullRequestPreviewsResponse out;
  for (v1::PullRequestPreview& p : previews) {
    for (auto& e : *p.mutable_entries())
      for (auto& a : *e.mutable_actions()) {
        a.clear_json_patch();
        a.clear_unified_diff();
      }
    *out.add_previews() = std::move(p);
  }
  return out;
}

absl::StatusOr<v1::PullRequestPreview> PullRequestPreviews::Get(const v1::GetPullRequestPreviewRequest& request) {
  if (request.repository_id().empty()) return absl::InvalidArgumentError("repository_id: is required");
  if (request.number() <= 0) return absl::InvalidArgumentError("number: must be positive");
  ASSIGN_OR_RETURN(std::optional<v1::PullRequestPreview> p, store_->GetPreview(request.repository_id(), request.number()));
  if (!p)
    return absl::NotFoundError(absl::StrCat("no preview of pull request ", request.number(), " of repository \"",
                                            request.repository_id(), "\" (unknown, closed, or not computed yet)"));
  return *p;
}

}  // namespace ferry::planner
