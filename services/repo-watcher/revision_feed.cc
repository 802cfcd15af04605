#include "services/repo-watcher/revision_feed.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api/page_size.h"
#include "services/repo-watcher/repository_spec.h"

namespace ferry::repo_watcher {
namespace {
constexpr size_t kMaxPageBytes = size_t{3} << 20;
}  // namespace

absl::StatusOr<int64_t> ParseCursor(const std::string& cursor, const std::string& field) {
  if (cursor.empty()) return 0;
  int64_t v = 0;
  if (!absl::SimpleAtoi(cursor, &v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", cursor, "\" is not a cursor from this service"));
  }
  return v;
}

absl::Status RevisionFeed::Watch(const v1::WatchRevisionsRequest& request, const Sink& sink,
                                 const Cancelled& cancelled) {
  absl::StatusOr<int64_t> cursor = ParseCursor(request.cursor(), "cursor");
  if (!cursor.ok()) return cursor.status();
  std::vector<std::string> ids(request.repository_ids().begin(), request.repository_ids().end());
  for (const std::string& id : ids) {
    if (!IsValidId(id)) return absl::InvalidArgumentError(absl::StrCat("repository_ids: \"", id, "\" is not a repository id"));
  }
  constexpr int kBatch = 500;
  int64_t position = *cursor;
  while (!cancelled()) {
    uint64_t seen = notifier_->Version();
    absl::StatusOr<std::vector<v1::Revision>> batch =
        store_->RevisionsAfter(position, ids, request.include_rejected(), kBatch);
    if (!batch.ok()) return batch.status();
    for (const v1::Revision& rev : *batch) {
      if (!sink(rev)) return absl::OkStatus();
      int64_t c = 0;
      if (absl::SimpleAtoi(rev.cursor(), &c)) position = c;
    }
    if (static_cast<int>(batch->size()) == kBatch) continue;
    if (!notifier_->AwaitChange(seen, cancelled)) {
      return absl::UnavailableError("repo-watcher is shutting down; resume with the last cursor");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ListRevisionsResponse> RevisionFeed::List(const v1::ListRevisionsRequest& request) {
  absl::StatusOr<int> page_size = api::PageSize(request.page_size());
  if (!page_size.ok()) return page_size.status();
  absl::StatusOr<int64_t> after = ParseCursor(request.page_token(), "page_token");
  if (!after.ok()) return after.status();
  RevisionQuery q;
  q.repository_id = request.repository_id();
  q.ref = request.ref();
  q.include_rejected = request.include_rejected();
  q.ascending = request.order() == v1::SORT_ORDER_ASCENDING;
  q.after_cursor = *after;
  q.limit = *page_size + 1;
  absl::StatusOr<std::vector<v1::Revision>> revs = store_->ListRevisions(q);
  if (!revs.ok()) return revs.status();
  v1::ListRevisionsResponse out;
  int limit = q.limit - 1;
  // A page also ends at 3 MiB (at least one revision), below the 4 MiB a
  // gRPC client accepts: revisions of commits with many changed paths are
  // up to 1 MiB each.
  size_t bytes = 0;
  int i = 0;
  for (; i < static_cast<int>(revs->size()) && i < limit; ++i) {
    size_t size = (*revs)[i].ByteSizeLong();
    if (i > 0 && bytes + size > kMaxPageBytes) break;
    bytes += size;
    *out.add_revisions() = (*revs)[i];
  }
  if (i < static_cast<int>(revs->size())) out.set_next_page_token((*revs)[i - 1].cursor());
  return out;
}

}  // namespace ferry::repo_watcher
