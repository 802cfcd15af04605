#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/planner.pb.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/planner/preview/blast_radius.h"
#include "services/planner/preview/preview_commenter.h"
#include "services/planner/preview/preview_store.h"

namespace ferry::planner {

// One job: keeping the previews of pull requests: an open pull request's
// new head is computed (BlastRadius), stored and posted as one comment
// edited in place; a closed or merged one is removed; and the previews are
// read back for the RPCs. Holds no state; thread-safe.
class PullRequestPreviews {
 public:
  // `commenter` may be null: previews are not posted.
  PullRequestPreviews(BlastRadius* radius, PreviewStore* store, PreviewCommenter* commenter);

  // One review event of the repo-watcher. Check results are ignored. An
  // event for a head already previewed (a replay) does nothing. Errors of
  // the comment do not fail it (the preview records them, comment_error).
  absl::Status HandleEvent(const v1::WatchReviewEventsResponse& event);

  absl::StatusOr<v1::ListPullRequestPreviewsResponse> List(const v1::ListPullRequestPreviewsRequest& request);
  absl::StatusOr<v1::PullRequestPreview> Get(const v1::GetPullRequestPreviewRequest& request);

 private:
  BlastRadius* radius_;
  PreviewStore* store_;
  PreviewCommenter* commenter_;
};

// The comment posted on the Git host (Markdown): the affected applications
// and environments with their actions, render failures and holds. Object
// names and counts only, never object content (no diffs, so no Secret
// value can reach the host); bounded to `max_bytes`.
std::string PreviewCommentBody(const v1::PullRequestPreview& preview, size_t max_bytes = 60000);

}  // namespace ferry::planner
