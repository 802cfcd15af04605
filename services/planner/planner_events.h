#pragma once

#include <string>

#include <google/protobuf/timestamp.pb.h>

#include "common/clock/clock.h"
#include "ferry/v1/audit.pb.h"

namespace ferry::planner {

// One job: building the planner's audit events and timestamps from its
// clock. Stateless apart from a process-wide counter that keeps idempotency
// keys unique; thread-safe.
class PlannerEvents {
 public:
  explicit PlannerEvents(const Clock* clock) : clock_(clock) {}

  // An event of `action` by `actor` (the system actor when actor.id is
  // empty), with a unique idempotency key derived from `key`.
  v1::Event Make(int action, const v1::Actor& actor, const std::string& message, const std::string& key) const;
  google::protobuf::Timestamp Now() const;
  const Clock* clock() const { return clock_; }

 private:
  const Clock* clock_;
};

// The ferry system actor ("ferry").
v1::Actor SystemActor();

// The first 12 characters of a commit sha, as messages show it.
std::string ShortSha(const std::string& sha);

}  // namespace ferry::planner
