#include "services/audit/event_encoder.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/audit/canonical_json.h"
#include "services/audit/json_text_canonicalizer.h"

namespace ferry::audit {
namespace {

// Writes members in key order; `first` tracks the comma.
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  void Key(const char* key) {
    if (!first_) out_->push_back(',');
    first_ = false;
    out_->push_back('"');
    out_->append(key);
    out_->append("\":");
  }
  absl::Status String(const char* key, absl::string_view value) {
    if (value.empty()) return absl::OkStatus();
    Key(key);
    return AppendJsonString(value, out_);
  }
  void Raw(const char* key, absl::string_view json) {
    Key(key);
    out_->append(json.data(), json.size());
  }
  // `value` in quotes, unescaped (enum names).
  void Quoted(const char* key, absl::string_view value) {
    Key(key);
    out_->push_back('"');
    out_->append(value.data(), value.size());
    out_->push_back('"');
  }
  void End() { out_->push_back('}'); }

 private:
  std::string* out_;
  bool first_ = true;
};

// Appends `value` as exactly `width` decimal digits (0 <= value < 10^width).
void AppendDigits(int64_t value, int width, std::string* out) {
  char buf[20];
  for (int k = width - 1; k >= 0; --k) {
    buf[k] = static_cast<char>('0' + value % 10);
    value /= 10;
  }
  out->append(buf, width);
}

// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, exactly as
// protobuf's TimeUtil::ToString (and so its JSON printer) writes it.
void AppendTimestamp(int64_t seconds, int32_t nanos, std::string* out) {
  // Days to a civil date (proleptic Gregorian; H. Hinnant's algorithm).
  const int64_t days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400;
  const int64_t second_of_day = seconds - days * 86400;
  const int64_t z = days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999 || nanos < 0 || nanos > 999999999) {
    // Outside what a valid Timestamp holds: printed as before, by absl and
    // printf, so that such (invalid) values still encode deterministically.
    absl::CivilSecond cs = absl::ToCivilSecond(absl::FromUnixSeconds(seconds), absl::UTCTimeZone());
    char buf[64];
    int n = std::snprintf(buf, sizeof(buf), "\"%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(cs.year()),
                          cs.month(), cs.day(), cs.hour(), cs.minute(), cs.second());
    if (nanos != 0) {
      if (nanos % 1000000 == 0) {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%03d", nanos / 1000000);
      } else if (nanos % 1000 == 0) {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%06d", nanos / 1000);
      } else {
        n += std::snprintf(buf + n, sizeof(buf) - n, ".%09d", nanos);
      }
    }
    out->append(buf, n);
    out->append("Z\"");
    return;
  }
  out->push_back('"');
  AppendDigits(year, 4, out);
  out->push_back('-');
  AppendDigits(month, 2, out);
  out->push_back('-');
  AppendDigits(day, 2, out);
  out->push_back('T');
  AppendDigits(second_of_day / 3600, 2, out);
  out->push_back(':');
  AppendDigits(second_of_day / 60 % 60, 2, out);
  out->push_back(':');
  AppendDigits(second_of_day % 60, 2, out);
  if (nanos != 0) {
    out->push_back('.');
    if (nanos % 1000000 == 0) {
      AppendDigits(nanos / 1000000, 3, out);
    } else if (nanos % 1000 == 0) {
      AppendDigits(nanos / 1000, 6, out);
    } else {
      AppendDigits(nanos, 9, out);
    }
  }
  out->append("Z\"");
}

absl::Status WriteFields(const EventFields& f, const std::pair<absl::string_view, absl::string_view>* hashes,
                         std::string* out) {
  ObjectWriter w(out);
  absl::Status st;
  if (!f.action.empty()) w.Quoted("action", f.action);
  if (f.has_actor) {
    w.Key("actor");
    ObjectWriter aw(out);
    if (!(st = aw.String("display_name", f.actor_display_name)).ok()) return st;
    if (!(st = aw.String("id", f.actor_id)).ok()) return st;
    if (!f.actor_kind.empty()) aw.Quoted("kind", f.actor_kind);
    aw.End();
  }
  if (f.has_append_time) {
    w.Key("append_time");
    AppendTimestamp(f.append_time_seconds, f.append_time_nanos, out);
  }
  if (f.has_details) w.Raw("details", f.details);
  if (hashes != nullptr && !(st = (w.Key("hash"), AppendJsonString(hashes->second, out))).ok()) return st;
  if (!(st = w.String("idempotency_key", f.idempotency_key)).ok()) return st;
  if (!(st = w.String("message", f.message)).ok()) return st;
  if (hashes != nullptr && !(st = (w.Key("prev_hash"), AppendJsonString(hashes->first, out))).ok()) return st;
  if (f.sequence != 0) {
    w.Key("sequence");
    absl::StrAppend(out, "\"", f.sequence, "\"");
  }
  if (!(st = w.String("service", f.service)).ok()) return st;
  if (f.has_subject) {
    w.Key("subject");
    ObjectWriter sw(out);
    if (!(st = sw.String("application_id", f.application_id)).ok()) return st;
    if (!(st = sw.String("commit_sha", f.commit_sha)).ok()) return st;
    if (!(st = sw.String("deployment_id", f.deployment_id)).ok()) return st;
    if (!(st = sw.String("environment_id", f.environment_id)).ok()) return st;
    if (!(st = sw.String("plan_id", f.plan_id)).ok()) return st;
    if (!(st = sw.String("ref", f.ref)).ok()) return st;
    if (!(st = sw.String("repository_id", f.repository_id)).ok()) return st;
    sw.End();
  }
  if (f.has_time) {
    w.Key("time");
    AppendTimestamp(f.time_seconds, f.time_nanos, out);
  }
  w.End();
  return absl::OkStatus();
}

absl::Status WriteEvent(const v1::Event& e, bool with_hashes, std::string* out) {
  EventFields f;
  f.sequence = e.sequence();
  f.has_time = e.has_time();
  f.time_seconds = e.time().seconds();
  f.time_nanos = e.time().nanos();
  f.has_append_time = e.has_append_time();
  f.append_time_seconds = e.append_time().seconds();
  f.append_time_nanos = e.append_time().nanos();
  f.service = e.service();
  if (e.action() != 0) {
    if (!v1::AuditAction_IsValid(e.action())) return absl::InvalidArgumentError("action: unknown value");
    f.action = v1::AuditAction_Name(e.action());
  }
  f.has_actor = e.has_actor();
  f.actor_id = e.actor().id();
  f.actor_display_name = e.actor().display_name();
  if (e.actor().kind() != 0) {
    if (!v1::ActorKind_IsValid(e.actor().kind())) return absl::InvalidArgumentError("actor.kind: unknown value");
    f.actor_kind = v1::ActorKind_Name(e.actor().kind());
  }
  f.has_subject = e.has_subject();
  const v1::Subject& s = e.subject();
  f.repository_id = s.repository_id();
  f.application_id = s.application_id();
  f.environment_id = s.environment_id();
  f.plan_id = s.plan_id();
  f.deployment_id = s.deployment_id();
  f.commit_sha = s.commit_sha();
  f.ref = s.ref();
  f.message = e.message();
  f.idempotency_key = e.idempotency_key();
  std::string details;
  if (e.has_details()) {
    absl::Status st = AppendCanonicalStruct(e.details(), &details);
    if (!st.ok()) return st;
    f.has_details = true;
    f.details = details;
  }
  std::pair<absl::string_view, absl::string_view> hashes(e.prev_hash(), e.hash());
  return WriteFields(f, with_hashes ? &hashes : nullptr, out);
}

}  // namespace

absl::Status AppendCanonicalFields(const EventFields& fields,
                                   const std::pair<absl::string_view, absl::string_view>* hashes, std::string* out) {
  return WriteFields(fields, hashes, out);
}

struct StoredEventEncoder::Buffers {
  JsonTextCanonicalizer json;
  std::string details;
};

StoredEventEncoder::StoredEventEncoder() : buffers_(std::make_unique<Buffers>()) {}
StoredEventEncoder::~StoredEventEncoder() = default;

absl::Status StoredEventEncoder::Encode(const EventFields& fields, std::string* out) {
  out->clear();
  if (!fields.has_details) return WriteFields(fields, nullptr, out);
  buffers_->details.clear();
  absl::Status st = buffers_->json.Append(fields.details, &buffers_->details);
  if (!st.ok()) return st;
  EventFields canonical = fields;
  canonical.details = buffers_->details;
  return WriteFields(canonical, nullptr, out);
}

absl::StatusOr<std::string> CanonicalJson(const v1::Event& event) {
  std::string out;
  out.reserve(512);
  absl::Status s = WriteEvent(event, /*with_hashes=*/false, &out);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::string> ExportLine(const v1::Event& event) {
  std::string out;
  out.reserve(640);
  absl::Status s = WriteEvent(event, /*with_hashes=*/true, &out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace ferry::audit
