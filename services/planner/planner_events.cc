#include "services/planner/planner_events.h"

#include <google/protobuf/util/time_util.h>

#include <atomic>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/text/utf8.h"

namespace ferry::planner {
namespace {

std::atomic<uint64_t> g_event_counter{0};

}  // namespace

v1::Actor SystemActor() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_SYSTEM);
  a.set_id("ferry");
  return a;
}

std::string ShortSha(const std::string& sha) { return sha.substr(0, 12); }

google::protobuf::Timestamp PlannerEvents::Now() const {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
}

v1::Event PlannerEvents::Make(int action, const v1::Actor& actor, const std::string& message,
                              const std::string& key) const {
  v1::Event e;
  e.set_action(static_cast<v1::AuditAction>(action));
  *e.mutable_actor() = actor.id().empty() ? SystemActor() : actor;
  e.set_message(text::SanitizeUtf8(message));  // may quote input from Git
  *e.mutable_time() = Now();
  e.set_idempotency_key(absl::StrCat(key, "/", absl::ToUnixNanos(clock_->Now()), "-", g_event_counter.fetch_add(1)));
  return e;
}

}  // namespace ferry::planner
