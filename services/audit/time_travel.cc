#include "services/audit/time_travel.h"

#include <google/protobuf/util/time_util.h>

#include <map>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/api/page_size.h"
#include "services/audit/dora_calculator.h"

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

absl::Status CheckTime(const google::protobuf::Timestamp& t, const char* field) {
  // Years 1 to 9999, as google.protobuf.Timestamp allows.
  if (t.seconds() < TimeUtil::kTimestampMinSeconds || t.seconds() > TimeUtil::kTimestampMaxSeconds ||
      t.nanos() < 0 || t.nanos() > 999999999) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not a valid time"));
  }
  return absl::OkStatus();
}

// [start, end) from a request: start required, end defaulting to now.
absl::StatusOr<std::pair<absl::Time, absl::Time>> Range(bool has_start, const google::protobuf::Timestamp& start,
                                                        bool has_end, const google::protobuf::Timestamp& end,
                                                        absl::Time now) {
  if (!has_start) return absl::InvalidArgumentError("start_time: required");
  if (absl::Status s = CheckTime(start, "start_time"); !s.ok()) return s;
  if (has_end) {
    if (absl::Status s = CheckTime(end, "end_time"); !s.ok()) return s;
  }
  const absl::Time from = FromProto(start);
  const absl::Time to = has_end ? FromProto(end) : now;
  if (to <= from) return absl::InvalidArgumentError("end_time: must be after start_time");
  return std::make_pair(from, to);
}

// ListChanges page tokens: "<event time in unix microseconds>.<sequence>" of
// the last change returned.
std::string EncodeToken(const v1::DeployedRevision& last) {
  return absl::StrCat(TimeUtil::TimestampToMicroseconds(last.time()), ".", last.sequence());
}

absl::StatusOr<ChangeCursor> DecodeToken(const std::string& token) {
  ChangeCursor cursor;
  if (token.empty()) return cursor;
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  int64_t micros = 0;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &micros) || !absl::SimpleAtoi(parts[1], &cursor.sequence) ||
      cursor.sequence <= 0) {
    return absl::InvalidArgumentError("page_token: not a token ListChanges issued");
  }
  cursor.time = absl::FromUnixMicros(micros);
  return cursor;
}

}  // namespace

absl::StatusOr<v1::GetDeployedStateResponse> TimeTravel::GetDeployedState(const v1::GetDeployedStateRequest& req) {
  if (req.has_time()) {
    if (absl::Status s = CheckTime(req.time(), "time"); !s.ok()) return s;
  }
  const absl::Time at = req.has_time() ? FromProto(req.time()) : clock_.Now();
  absl::StatusOr<std::vector<DeploymentOutcome>> rows = store_.StateAt(at, req.application_id(), req.environment_id());
  if (!rows.ok()) return rows.status();
  v1::GetDeployedStateResponse out;
  *out.mutable_time() = ToProto(at);
  for (DeploymentOutcome& row : *rows) *out.add_deployed() = std::move(row.deployment);
  return out;
}

absl::StatusOr<v1::ListChangesResponse> TimeTravel::ListChanges(const v1::ListChangesRequest& req) {
  absl::StatusOr<std::pair<absl::Time, absl::Time>> range =
      Range(req.has_start_time(), req.start_time(), req.has_end_time(), req.end_time(), clock_.Now());
  if (!range.ok()) return range.status();
  absl::StatusOr<int> limit = api::PageSize(req.page_size());
  if (!limit.ok()) return limit.status();
  absl::StatusOr<ChangeCursor> after = DecodeToken(req.page_token());
  if (!after.ok()) return after.status();
  const auto [start, end] = *range;
  absl::StatusOr<std::vector<DeploymentOutcome>> rows =
      store_.Outcomes(start, end, req.application_id(), req.environment_id(), *after, *limit + 1);
  if (!rows.ok()) return rows.status();
  v1::ListChangesResponse out;
  const bool more = static_cast<int>(rows->size()) > *limit;
  if (more) rows->resize(*limit);
  for (DeploymentOutcome& row : *rows) {
    v1::DeploymentChange* c = out.add_changes();
    c->set_outcome(row.action);
    c->set_message(std::move(row.message));
    *c->mutable_deployment() = std::move(row.deployment);
  }
  if (more) out.set_next_page_token(EncodeToken(out.changes(out.changes_size() - 1).deployment()));
  if (!req.page_token().empty()) return out;

  // The first page also says, per pair whose live deployment may have
  // moved (one that had a success in the range), what was live at each end:
  // before the first instant of the range, and at its last.
  absl::StatusOr<HistoryStore::Moved> moved =
      store_.MovedBetween(start, end, req.application_id(), req.environment_id());
  if (!moved.ok()) return moved.status();
  std::map<std::pair<std::string, std::string>, v1::TargetChange> targets;
  for (DeploymentOutcome& row : moved->before) {
    v1::TargetChange& t = targets[{row.deployment.application_id(), row.deployment.environment_id()}];
    *t.mutable_before() = std::move(row.deployment);
  }
  for (DeploymentOutcome& row : moved->after) {
    v1::TargetChange& t = targets[{row.deployment.application_id(), row.deployment.environment_id()}];
    *t.mutable_after() = std::move(row.deployment);
  }
  for (auto& [key, t] : targets) {
    if (t.before().deployment_id() == t.after().deployment_id()) continue;
    t.set_application_id(key.first);
    t.set_environment_id(key.second);
    *out.add_targets() = std::move(t);
  }
  return out;
}

absl::StatusOr<v1::GetDoraMetricsResponse> TimeTravel::GetDoraMetrics(const v1::GetDoraMetricsRequest& req) {
  absl::StatusOr<std::pair<absl::Time, absl::Time>> range =
      Range(req.has_start_time(), req.start_time(), req.has_end_time(), req.end_time(), clock_.Now());
  if (!range.ok()) return range.status();
  absl::StatusOr<std::vector<DeploymentOutcome>> rows =
      store_.DoraOutcomes(range->first, range->second, req.application_id(), req.environment_id());
  if (!rows.ok()) return rows.status();
  return DoraCalculator::Compute(*rows, range->first, range->second);
}

}  // namespace ferry::audit
