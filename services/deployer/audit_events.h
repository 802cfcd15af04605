#pragma once

#include <map>
#include <string>

#include "absl/time/time.h"
#include "ferry/v1/audit.pb.h"
#include "ferry/v1/deployer.pb.h"

namespace ferry::deployer {

// Builders of the deployer's audit events. Every event names the actor, the
// plan, the revision and the environment it concerns. Idempotency keys are
// derived from the ids involved, so a retried write never duplicates.
v1::Event DeploymentEvent(v1::AuditAction action, const v1::Deployment& d, const std::string& message,
                          const std::string& key_suffix);

v1::Event AppEvent(v1::AuditAction action, const std::string& app, const std::string& env, const v1::Actor& actor,
                   const std::string& message, const std::string& idempotency_key,
                   const std::map<std::string, std::string>& details = {});

// The actor of automated actions: Actor{SYSTEM, "ferry"}.
v1::Actor FerryActor();

google::protobuf::Timestamp ToTimestamp(absl::Time t);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

}  // namespace ferry::deployer
