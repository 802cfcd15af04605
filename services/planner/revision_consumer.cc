#include "services/planner/revision_consumer.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/concurrency/last_resort.h"
#include "common/logging/logger.h"
#include "services/planner/planner_events.h"
#include "common/status/transient.h"

namespace ferry::planner {

RevisionConsumer::RevisionConsumer(RepoSource* repo, CursorStore* cursors, RevisionPlanner* planner,
                                   const WaitableClock* clock, int quarantine_attempts)
    : repo_(repo),
      cursors_(cursors),
      planner_(planner),
      clock_(clock != nullptr ? clock : &system_clock_),
      quarantine_attempts_(std::max(1, quarantine_attempts)),
      loop_({.name = "revision-consumer",
             .stream = "revision stream",
             .cursor_name = kCursorName,
             .initial_backoff = kInitialBackoff,
             .max_backoff = kMaxBackoff,
             .healthy_stream = kHealthyStream},
            cursors_, [this](const std::string& cursor) { return repo_->WatchRevisions(cursor); },
            [this](const v1::Revision& revision) { return Consume(revision); }, clock_) {}

absl::Status RevisionConsumer::Skip(const v1::Revision& revision, const std::string& kind, const std::string& message) {
  v1::Event e;
  e.set_action(v1::AUDIT_ACTION_RENDER_FAILED);
  *e.mutable_actor() = SystemActor();
  e.set_message(message);
  *e.mutable_time() = PlannerEvents(clock_).Now();
  e.set_idempotency_key(absl::StrCat("revision-", kind, "/", revision.repository_id(), "/", revision.cursor()));
  e.mutable_subject()->set_repository_id(revision.repository_id());
  e.mutable_subject()->set_ref(revision.ref());
  e.mutable_subject()->set_commit_sha(revision.sha());
  (*e.mutable_details()->mutable_fields())["revision"].set_string_value(kind);
  absl::Status s = cursors_->AdvanceCursor(kCursorName, revision.cursor(), {e});
  // Recorded before (the same revision skipped again after a lost reply).
  if (absl::IsAlreadyExists(s)) s = cursors_->AdvanceCursor(kCursorName, revision.cursor(), {});
  if (!s.ok()) logging::Warn("cannot persist the revision cursor", {{"error", s.ToString()}});
  return s;
}

absl::Status RevisionConsumer::Consume(const v1::Revision& revision) {
  const std::string key = revision.cursor().empty() ? revision.id() : revision.cursor();
  const std::string what = absl::StrCat("revision ", ShortSha(revision.sha()), " of ", revision.repository_id(), " (",
                                        revision.ref(), ")");
  absl::StatusOr<ItemAttempts> before = cursors_->BeginAttempt(kCursorName, key);
  if (!before.ok()) {
    logging::Warn("cannot record the revision attempt", {{"error", before.status().ToString()}});
    return before.status();
  }
  auto quarantine = [&](int attempts, const std::string& last_error) {
    std::string message = absl::StrCat(what, " quarantined after ", attempts,
                                       " attempts that crashed, timed out or failed (limit ",
                                       quarantine_attempts_, ", --revision-quarantine-attempts); last error: ",
                                       last_error.empty() ? "none recorded (the planner stopped mid-revision)"
                                                          : last_error,
                                       ". The planner moved past it; later revisions are planned.");
    logging::Error("revision quarantined", {{"revision", revision.id()}, {"sha", revision.sha()},
                                            {"repository", revision.repository_id()}, {"attempts", attempts},
                                            {"error", last_error}});
    return Skip(revision, "quarantined", message);
  };
  if (before->unfinished >= quarantine_attempts_) return quarantine(before->unfinished, before->last_error);

  bool threw = false;
  absl::StatusOr<int> planned = concurrency::RunGuarded(
      absl::StrCat("planning ", what), [&] { return planner_->HandleRevision(revision); }, &threw);
  if (planned.ok()) {
    if (*planned > 0)
      logging::Info("revision planned", {{"sha", revision.sha()}, {"ref", revision.ref()}, {"plans", *planned}});
    absl::Status s = cursors_->AdvanceCursor(kCursorName, revision.cursor(), {});
    if (!s.ok()) logging::Warn("cannot persist the revision cursor", {{"error", s.ToString()}});
    return s;
  }
  const absl::Status& error = planned.status();
  if (!threw && IsInputError(error)) {
    logging::Warn("revision failed; moving past it",
                  {{"revision", revision.id()}, {"sha", revision.sha()}, {"error", error.ToString()}});
    return Skip(revision, "failed",
                absl::StrCat(what, " could not be planned: ", error.message(),
                             ". The planner moved past it; later revisions are planned."));
  }
  const bool counted = threw || !status::IsTransient(error);
  absl::Status ended = cursors_->EndAttempt(kCursorName, key, counted, error.ToString());
  if (counted && ended.ok() && before->unfinished + 1 >= quarantine_attempts_)
    return quarantine(before->unfinished + 1, error.ToString());
  logging::Warn("revision not planned; will retry", {{"revision", revision.id()}, {"sha", revision.sha()},
                                                     {"error", error.ToString()}, {"counted", counted}});
  return error;
}

}  // namespace ferry::planner
