#include "services/audit/dora_calculator.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>
#include <string>
#include <utility>

namespace ferry::audit {
namespace {

using google::protobuf::util::TimeUtil;

absl::Time FromProto(const google::protobuf::Timestamp& t) {
  return absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(t));
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

// What the range's events say about one deployment.
struct Deployment {
  std::string application;
  std::string environment;
  std::string kind;
  std::optional<absl::Time> succeeded;
  std::optional<absl::Time> failed;  // the first FAILED or ROLLED_BACK
  std::optional<absl::Time> restored;  // the next success after `failed`
  std::optional<absl::Time> commit_time;
};

struct Accumulator {
  int64_t deployments = 0;
  int64_t successful = 0;
  int64_t failed = 0;
  std::vector<double> lead_times;
  std::vector<double> restore_times;
  int64_t unrestored = 0;

  void Add(const Deployment& d) {
    const bool change = d.kind == "DEPLOYMENT_KIND_ROLLOUT" || d.kind == "DEPLOYMENT_KIND_ROLLBACK";
    if (change) {
      ++deployments;
      if (d.failed) {
        ++failed;
      } else if (d.succeeded) {
        ++successful;
        if (d.kind == "DEPLOYMENT_KIND_ROLLOUT" && d.commit_time) {
          lead_times.push_back(std::max(0.0, absl::ToDoubleSeconds(*d.succeeded - *d.commit_time)));
        }
      }
    }
    if (d.failed) {
      if (d.restored) {
        restore_times.push_back(std::max(0.0, absl::ToDoubleSeconds(*d.restored - *d.failed)));
      } else {
        ++unrestored;
      }
    }
  }
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

void Fill(const Accumulator& a, double days, v1::DoraFigures* out) {
  out->set_deployments(a.deployments);
  out->set_successful_deployments(a.successful);
  out->set_deployments_per_day(days > 0 ? static_cast<double>(a.successful) / days : 0);
  out->set_failed_deployments(a.failed);
  out->set_change_failure_rate(a.deployments > 0 ? static_cast<double>(a.failed) / static_cast<double>(a.deployments)
                                                 : 0);
  out->set_lead_time_samples(static_cast<int64_t>(a.lead_times.size()));
  out->set_lead_time_median_seconds(Median(a.lead_times));
  out->set_lead_time_mean_seconds(Mean(a.lead_times));
  out->set_restored_failures(static_cast<int64_t>(a.restore_times.size()));
  out->set_unrestored_failures(a.unrestored);
  out->set_time_to_restore_median_seconds(Median(a.restore_times));
  out->set_time_to_restore_mean_seconds(Mean(a.restore_times));
}

}  // namespace

v1::GetDoraMetricsResponse DoraCalculator::Compute(const std::vector<DeploymentOutcome>& outcomes, absl::Time start,
                                                   absl::Time end) {
  // Each deployment, from all its outcome events in the range.
  std::map<std::string, Deployment> deployments;
  for (const DeploymentOutcome& o : outcomes) {
    const v1::DeployedRevision& r = o.deployment;
    Deployment& d = deployments[r.deployment_id()];
    d.application = r.application_id();
    d.environment = r.environment_id();
    if (!r.kind().empty()) d.kind = r.kind();
    const absl::Time t = FromProto(r.time());
    if (o.action == v1::AUDIT_ACTION_DEPLOYMENT_SUCCEEDED) {
      if (!d.succeeded) d.succeeded = t;
      if (o.commit_time) d.commit_time = o.commit_time;
    } else if (!d.failed || t < *d.failed) {
      d.failed = t;
      d.restored = o.next_success_time;
    }
  }
  Accumulator total;
  std::map<std::pair<std::string, std::string>, Accumulator> per_target;
  for (const auto& [id, d] : deployments) {
    total.Add(d);
    per_target[{d.application, d.environment}].Add(d);
  }
  const double days = absl::ToDoubleHours(end - start) / 24;
  v1::GetDoraMetricsResponse out;
  *out.mutable_start_time() = ToProto(start);
  *out.mutable_end_time() = ToProto(end);
  Fill(total, days, out.mutable_total());
  for (const auto& [target, a] : per_target) {
    v1::DoraFigures* f = out.add_targets();
    f->set_application_id(target.first);
    f->set_environment_id(target.second);
    Fill(a, days, f);
  }
  return out;
}

}  // namespace ferry::audit
