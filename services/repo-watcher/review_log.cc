#include "services/repo-watcher/review_log.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/text/utf8.h"
#include "services/repo-watcher/repo_poller.h"
#include "services/repo-watcher/repository_spec.h"
#include "services/repo-watcher/revision_feed.h"

namespace ferry::repo_watcher {
namespace {

// Whether `s` has a C0 control character or DEL (UTF-8 multibyte sequences
// have every byte >= 0x80, so a byte test is exact).
bool HasControl(const std::string& s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

const char* StateName(v1::CheckState s) {
  switch (s) {
    case v1::CHECK_STATE_PENDING:
      return "pending";
    case v1::CHECK_STATE_SUCCESS:
      return "success";
    case v1::CHECK_STATE_FAILURE:
      return "failure";
    default:
      return "unspecified";
  }
}

}  // namespace

bool IsFullSha(const std::string& sha) {
  if (sha.size() != 40) return false;
  for (char c : sha) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

absl::Status ValidateCheckReport(const v1::ReportCheckRequest& r) {
  if (!IsValidId(r.repository_id())) return Bad("repository_id", "must be a repository id (lowercase DNS label)");
  if (!IsFullSha(r.sha())) return Bad("sha", "must be a full commit sha (40 lowercase hex characters)");
  if (r.name().empty()) return Bad("name", "is required");
  if (r.name().size() > kMaxCheckNameBytes) {
    return Bad("name", absl::StrCat("is ", r.name().size(), " bytes, more than ", kMaxCheckNameBytes));
  }
  if (!text::IsValidUtf8(r.name()) || HasControl(r.name())) {
    return Bad("name", "must be printable UTF-8 (no control characters)");
  }
  if (r.state() != v1::CHECK_STATE_PENDING && r.state() != v1::CHECK_STATE_SUCCESS &&
      r.state() != v1::CHECK_STATE_FAILURE) {
    return Bad("state", "must be CHECK_STATE_PENDING, CHECK_STATE_SUCCESS or CHECK_STATE_FAILURE");
  }
  if (!r.url().empty()) {
    if (r.url().size() > kMaxCheckUrlBytes) {
      return Bad("url", absl::StrCat("is ", r.url().size(), " bytes, more than ", kMaxCheckUrlBytes));
    }
    const std::string lower = absl::AsciiStrToLower(r.url().substr(0, 8));
    const bool http = absl::StartsWith(lower, "https://") || absl::StartsWith(lower, "http://");
    if (!http) return Bad("url", "must be an http:// or https:// URL");
    for (unsigned char c : r.url()) {
      if (c <= 0x20 || c >= 0x7f) return Bad("url", "must not contain spaces, control or non-ASCII characters");
    }
    if (r.url().size() <= lower.find("//") + 2 || r.url()[lower.find("//") + 2] == '/') {
      return Bad("url", "has no host");
    }
  }
  if (r.description().size() > kMaxCheckDescriptionBytes) {
    return Bad("description",
               absl::StrCat("is ", r.description().size(), " bytes, more than ", kMaxCheckDescriptionBytes));
  }
  if (!text::IsValidUtf8(r.description())) return Bad("description", "must be UTF-8");
  return absl::OkStatus();
}

absl::StatusOr<v1::CommitCheck> ReviewLog::ReportCheck(const v1::ReportCheckRequest& report, const v1::Actor& actor,
                                                       const std::string& source) {
  auto audit_rejection = [&](const absl::Status& error) {
    const std::string repo = IsValidId(report.repository_id()) ? report.repository_id() : "";
    v1::Event e = MakeEvent(v1::AUDIT_ACTION_CHECK_REPORTED, repo,
                            text::SanitizeUtf8(absl::StrCat("check report refused: ", error.message())));
    *e.mutable_actor() = actor;
    auto& f = *e.mutable_details()->mutable_fields();
    f["outcome"].set_string_value("rejected");
    f["error"].set_string_value(text::SanitizeUtf8(error.message()));
    f["source"].set_string_value(source);
    (void)store_->RecordEvent(e);  // best effort: the caller gets `error` either way
    return error;
  };
  if (absl::Status s = ValidateCheckReport(report); !s.ok()) return audit_rejection(s);
  v1::CommitCheck check;
  check.set_repository_id(report.repository_id());
  check.set_sha(report.sha());
  check.set_name(report.name());
  check.set_state(report.state());
  check.set_url(report.url());
  check.set_description(report.description());
  check.set_source(source);
  *check.mutable_reported_by() = actor;
  v1::Event e = MakeEvent(v1::AUDIT_ACTION_CHECK_REPORTED, report.repository_id(),
                          absl::StrCat("check \"", report.name(), "\" of ", report.repository_id(), "@",
                                       report.sha().substr(0, 12), " is ", StateName(report.state())));
  *e.mutable_actor() = actor;
  auto& f = *e.mutable_details()->mutable_fields();
  f["outcome"].set_string_value("applied");
  f["sha"].set_string_value(report.sha());
  f["check"].set_string_value(report.name());
  f["state"].set_string_value(StateName(report.state()));
  f["url"].set_string_value(report.url());
  f["source"].set_string_value(source);
  absl::StatusOr<v1::CommitCheck> stored = store_->RecordCheck(check, e);
  if (absl::IsNotFound(stored.status())) {
    return audit_rejection(absl::NotFoundError(
        absl::StrCat("repository_id: repository \"", report.repository_id(), "\" is not registered")));
  }
  if (stored.ok()) notifier_->Notify();
  return stored;
}

absl::StatusOr<v1::ListChecksResponse> ReviewLog::ListChecks(const v1::ListChecksRequest& request) {
  if (!IsValidId(request.repository_id())) return Bad("repository_id", "must be a repository id (lowercase DNS label)");
  if (!IsFullSha(request.sha())) return Bad("sha", "must be a full commit sha (40 lowercase hex characters)");
  absl::StatusOr<std::vector<v1::CommitCheck>> checks = store_->ListChecks(request.repository_id(), request.sha());
  if (!checks.ok()) return checks.status();
  v1::ListChecksResponse out;
  for (v1::CommitCheck& c : *checks) *out.add_checks() = std::move(c);
  return out;
}

absl::StatusOr<v1::ListPullRequestsResponse> ReviewLog::ListPullRequests(const v1::ListPullRequestsRequest& request) {
  if (!request.repository_id().empty() && !IsValidId(request.repository_id())) {
    return Bad("repository_id", "must be a repository id (lowercase DNS label)");
  }
  absl::StatusOr<std::vector<v1::PullRequest>> prs =
      store_->ListPullRequests(request.repository_id(), request.include_closed());
  if (!prs.ok()) return prs.status();
  v1::ListPullRequestsResponse out;
  for (v1::PullRequest& pr : *prs) *out.add_pull_requests() = std::move(pr);
  return out;
}

absl::StatusOr<v1::PullRequest> ReviewLog::RecordPullRequest(const v1::PullRequest& pr,
                                                             const std::optional<v1::PullRequest>& expected,
                                                             v1::AuditAction action, const v1::Actor& actor,
                                                             const std::string& message) {
  v1::Event e = MakeEvent(action, pr.repository_id(), text::SanitizeUtf8(message));
  *e.mutable_actor() = actor;
  auto& f = *e.mutable_details()->mutable_fields();
  f["number"].set_number_value(static_cast<double>(pr.number()));
  f["state"].set_string_value(v1::PullRequestState_Name(pr.state()));
  f["head_ref"].set_string_value(pr.head_ref());
  f["head_sha"].set_string_value(pr.head_sha());
  f["base_ref"].set_string_value(pr.base_ref());
  f["base_sha"].set_string_value(pr.base_sha());
  f["url"].set_string_value(pr.url());
  absl::StatusOr<v1::PullRequest> stored = store_->RecordPullRequest(pr, expected, e);
  if (stored.ok()) notifier_->Notify();
  return stored;
}

absl::Status ReviewLog::Watch(const v1::WatchReviewEventsRequest& request, const Sink& sink,
                              const Cancelled& cancelled) {
  absl::StatusOr<int64_t> cursor = ParseCursor(request.cursor(), "cursor");
  if (!cursor.ok()) return cursor.status();
  std::vector<std::string> ids(request.repository_ids().begin(), request.repository_ids().end());
  for (const std::string& id : ids) {
    if (!IsValidId(id)) return Bad("repository_ids", absl::StrCat("\"", id, "\" is not a repository id"));
  }
  constexpr int kBatch = 500;
  int64_t position = *cursor;
  while (!cancelled()) {
    uint64_t seen = notifier_->Version();
    absl::StatusOr<std::vector<v1::WatchReviewEventsResponse>> batch = store_->ReviewEventsAfter(position, ids, kBatch);
    if (!batch.ok()) return batch.status();
    for (const v1::WatchReviewEventsResponse& event : *batch) {
      if (!sink(event)) return absl::OkStatus();
      int64_t c = 0;
      if (absl::SimpleAtoi(event.cursor(), &c)) position = c;
    }
    if (static_cast<int>(batch->size()) == kBatch) continue;
    if (!notifier_->AwaitChange(seen, cancelled)) {
      return absl::UnavailableError("repo-watcher is shutting down; resume with the last cursor");
    }
  }
  return absl::OkStatus();
}

}  // namespace ferry::repo_watcher
