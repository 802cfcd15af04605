#include "services/planner/sync_window.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <iterator>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::planner {
namespace {

template <size_t N>
absl::Status ParseField(absl::string_view text, int lo, int hi, const char* name, std::bitset<N>& out, bool& restricted) {
  restricted = text != "*";
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int step = 1;
    absl::string_view range = part;
    size_t slash = part.find('/');
    if (slash != absl::string_view::npos) {
      if (!absl::SimpleAtoi(part.substr(slash + 1), &step) || step <= 0)
        return absl::InvalidArgumentError(absl::StrCat(name, ": bad step in \"", part, "\""));
      range = part.substr(0, slash);
    }
    int a = lo, b = hi;
    if (range != "*") {
      size_t dash = range.find('-');
      if (dash == absl::string_view::npos) {
        if (!absl::SimpleAtoi(range, &a)) return absl::InvalidArgumentError(absl::StrCat(name, ": bad value \"", part, "\""));
        b = slash == absl::string_view::npos ? a : hi;
      } else if (!absl::SimpleAtoi(range.substr(0, dash), &a) || !absl::SimpleAtoi(range.substr(dash + 1), &b)) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": bad range \"", part, "\""));
      }
    }
    if (a < lo || b > hi || a > b)
      return absl::InvalidArgumentError(absl::StrCat(name, ": \"", part, "\" is outside ", lo, "-", hi));
    // int64_t: a step up to INT_MAX must not overflow past the last value.
    for (int64_t v = a; v <= b; v += step) out.set(static_cast<size_t>(v));
  }
  return absl::OkStatus();
}

absl::Duration WindowDuration(const v1::SyncWindow& w) {
  return absl::Seconds(w.duration().seconds()) + absl::Nanoseconds(w.duration().nanos());
}

}  // namespace

absl::StatusOr<CronSchedule> CronSchedule::Parse(const std::string& expression) {
  std::vector<absl::string_view> f = absl::StrSplit(expression, ' ', absl::SkipWhitespace());
  if (f.size() != 5)
    return absl::InvalidArgumentError(absl::StrCat("\"", expression, "\" must have 5 fields (minute hour day month weekday)"));
  CronSchedule c;
  bool unused = false;
  std::bitset<8> weekdays;
  absl::Status s = ParseField(f[0], 0, 59, "minute", c.minutes_, unused);
  if (s.ok()) s = ParseField(f[1], 0, 23, "hour", c.hours_, unused);
  if (s.ok()) s = ParseField(f[2], 1, 31, "day of month", c.days_, c.days_restricted_);
  if (s.ok()) s = ParseField(f[3], 1, 12, "month", c.months_, unused);
  if (s.ok()) s = ParseField(f[4], 0, 7, "day of week", weekdays, c.weekdays_restricted_);
  if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat("\"", expression, "\": ", s.message()));
  for (int d = 0; d < 7; ++d) c.weekdays_[static_cast<size_t>(d)] = weekdays[static_cast<size_t>(d)];
  if (weekdays[7]) c.weekdays_.set(0);
  return c;
}

bool CronSchedule::Matches(const absl::CivilMinute& t) const {
  if (!minutes_[static_cast<size_t>(t.minute())] || !hours_[static_cast<size_t>(t.hour())] ||
      !months_[static_cast<size_t>(t.month())])
    return false;
  bool dom = days_[static_cast<size_t>(t.day())];
  bool dow = weekdays_[static_cast<size_t>(absl::GetWeekday(absl::CivilDay(t)) == absl::Weekday::sunday
                                               ? 0
                                               : static_cast<int>(absl::GetWeekday(absl::CivilDay(t))) + 1)];
  if (days_restricted_ && weekdays_restricted_) return dom || dow;
  return dom && dow;
}

namespace {

// absl::LoadTimeZone reads the file a name points to, and takes absolute
// and "../" paths: a time zone from Git could make the planner open any
// file (a FIFO would block it for good). Only names shaped like the IANA
// database's ("Europe/Berlin", "Etc/GMT+1", "UTC") are looked up.
bool LoadZone(const std::string& name, absl::TimeZone* tz) {
  if (name.empty() || name.size() > 64 || name.front() == '/' || name.back() == '/') return false;
  char previous = '/';
  for (char ch : name) {
    bool ok = absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '+' || ch == '/';
    if (!ok || (ch == '/' && previous == '/')) return false;  // no dots at all, so no "." or ".."
    previous = ch;
  }
  return absl::LoadTimeZone(name, tz);
}

}  // namespace

absl::Status ValidateSyncWindows(const google::protobuf::RepeatedPtrField<v1::SyncWindow>& windows,
                                 const std::string& field, const SyncWindowLimits& limits) {
  if (windows.size() > limits.max_windows) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", windows.size(), " sync windows, more than ",
                                                   limits.max_windows, " (limit ", kMaxSyncWindowsFlag, ")"));
  }
  for (int i = 0; i < windows.size(); ++i) {
    const v1::SyncWindow& w = windows[i];
    std::string prefix = absl::StrCat(field, "[", i, "].");
    if (w.kind() != v1::SYNC_WINDOW_KIND_ALLOW && w.kind() != v1::SYNC_WINDOW_KIND_DENY)
      return absl::InvalidArgumentError(prefix + "kind: must be allow or deny");
    if (static_cast<int64_t>(w.schedule().size()) > limits.max_schedule_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "schedule: ", w.schedule().size(), " bytes, more than ",
                                                     limits.max_schedule_bytes, " (limit ", kMaxCronLengthFlag, ")"));
    }
    absl::StatusOr<CronSchedule> c = CronSchedule::Parse(w.schedule());
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat(prefix, "schedule: ", c.status().message()));
    absl::Duration d = WindowDuration(w);
    if (d <= absl::ZeroDuration() || d > absl::Hours(24 * 31))
      return absl::InvalidArgumentError(prefix + "duration: must be positive and at most 31 days");
    absl::TimeZone tz;
    if (!w.time_zone().empty() && !LoadZone(w.time_zone(), &tz))
      return absl::InvalidArgumentError(absl::StrCat(prefix, "time_zone: unknown time zone \"",
                                                     w.time_zone().substr(0, 80),
                                                     "\" (an IANA name such as Europe/Berlin)"));
  }
  return absl::OkStatus();
}

namespace {

struct Parsed {
  const v1::SyncWindow* window;
  CronSchedule cron;
  absl::TimeZone tz;
  absl::Duration duration;
  std::vector<absl::Time> starts;  // sorted: every start from (now - duration) to the horizon
};

// Lists the starts of `p` in [from, to]: one cron test per minute.
void ListStarts(Parsed& p, absl::Time from, absl::Time to) {
  for (absl::Time t = absl::FromCivil(absl::ToCivilMinute(from, p.tz), p.tz); t <= to; t += absl::Minutes(1)) {
    if (p.cron.Matches(absl::ToCivilMinute(t, p.tz))) p.starts.push_back(t);
  }
}

// True when a start of `p` lies in (t - duration, t]; `t` within the listed range.
bool Active(const Parsed& p, absl::Time t) {
  auto after = std::upper_bound(p.starts.begin(), p.starts.end(), t);
  if (after == p.starts.begin()) return false;
  return *std::prev(after) + p.duration > t;
}

}  // namespace

WindowDecision EvaluateSyncWindows(const google::protobuf::RepeatedPtrField<v1::SyncWindow>& windows, absl::Time now) {
  WindowDecision d;
  if (windows.empty()) return d;
  // When it opens: only the start of an allow window or the end of a deny
  // window can open it, so those instants are tried in order, up to 3 days
  // ahead (a schedule that never matches, "0 0 31 2 *", ends the search
  // there).
  const absl::Time horizon = now + absl::Hours(72);
  std::vector<Parsed> parsed;
  for (const auto& w : windows) {
    absl::StatusOr<CronSchedule> c = CronSchedule::Parse(w.schedule());
    absl::TimeZone tz = absl::UTCTimeZone();
    absl::Duration duration = WindowDuration(w);
    // Stored before validation bounded them, a window could ask for any
    // amount of work: out-of-range durations count as invalid too.
    if (!c.ok() || (!w.time_zone().empty() && !LoadZone(w.time_zone(), &tz)) ||
        duration <= absl::ZeroDuration() || duration > absl::Hours(24 * 31)) {
      d.open = false;
      d.message = absl::StrCat("sync window \"", w.schedule(), "\" is invalid");
      return d;
    }
    parsed.push_back({&w, *c, tz, duration, {}});
    ListStarts(parsed.back(), now - duration, horizon);
  }
  auto open_at = [&](absl::Time t, std::string* why) {
    bool any_allow = false, allowed = false;
    for (const Parsed& p : parsed) {
      bool active = Active(p, t);
      if (p.window->kind() == v1::SYNC_WINDOW_KIND_DENY && active) {
        if (why) *why = absl::StrCat("deny window \"", p.window->schedule(), "\" is active");
        return false;
      }
      if (p.window->kind() == v1::SYNC_WINDOW_KIND_ALLOW) {
        any_allow = true;
        allowed = allowed || active;
      }
    }
    if (any_allow && !allowed) {
      if (why) *why = "no allow window is active";
      return false;
    }
    return true;
  };
  std::string why;
  if (open_at(now, &why)) return d;
  d.open = false;
  d.message = "sync window closed: " + why;
  std::set<absl::Time> candidates;
  for (const Parsed& p : parsed) {
    for (absl::Time t : p.starts) {
      absl::Time opening = p.window->kind() == v1::SYNC_WINDOW_KIND_DENY ? t + p.duration : t;
      if (opening > now && opening <= horizon) candidates.insert(opening);
    }
  }
  for (absl::Time candidate : candidates) {
    if (open_at(candidate, nullptr)) {
      absl::StrAppend(&d.message, "; opens at ", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", candidate, absl::UTCTimeZone()));
      return d;
    }
  }
  absl::StrAppend(&d.message, "; does not open within 3 days");
  return d;
}

}  // namespace ferry::planner
