#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ferry/v1/repo_watcher.pb.h"
#include "services/repo-watcher/repository_store.h"
#include "services/repo-watcher/revision_notifier.h"

namespace ferry::repo_watcher {

// The revision stream behind WatchRevisions and ListRevisions: replays
// from a cursor, then follows new revisions as the notifier announces
// them (RevisionNotifier::AwaitChange: the wait wakes every 500 ms to
// notice a departed client, and the store is read again without a signal
// only every 10 s). Thread-safe.
class RevisionFeed {
 public:
  using Sink = std::function<bool(const v1::Revision&)>;  // false: client gone
  using Cancelled = std::function<bool()>;

  RevisionFeed(RepositoryStore* store, RevisionNotifier* notifier) : store_(store), notifier_(notifier) {}

  // Streams until the client leaves (OK) or the server shuts down
  // (UNAVAILABLE: resume with the last cursor). INVALID_ARGUMENT for a bad
  // cursor or repository id.
  absl::Status Watch(const v1::WatchRevisionsRequest& request, const Sink& sink, const Cancelled& cancelled);

  absl::StatusOr<v1::ListRevisionsResponse> List(const v1::ListRevisionsRequest& request);

 private:
  RepositoryStore* store_;
  RevisionNotifier* notifier_;
};

// Parses an opaque cursor ("" = 0).
absl::StatusOr<int64_t> ParseCursor(const std::string& cursor, const std::string& field);

}  // namespace ferry::repo_watcher
