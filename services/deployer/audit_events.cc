#include "services/deployer/audit_events.h"

#include <google/protobuf/util/time_util.h>

namespace ferry::deployer {

v1::Actor FerryActor() {
  v1::Actor a;
  a.set_kind(v1::ACTOR_KIND_SYSTEM);
  a.set_id("ferry");
  return a;
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixNanos(google::protobuf::util::TimeUtil::TimestampToNanoseconds(t));
}

v1::Event DeploymentEvent(v1::AuditAction action, const v1::Deployment& d, const std::string& message,
                          const std::string& key_suffix) {
  v1::Event e;
  e.set_action(action);
  *e.mutable_actor() = d.has_actor() && !d.actor().id().empty() ? d.actor() : FerryActor();
  v1::Subject* s = e.mutable_subject();
  s->set_repository_id(d.revision().repository_id());
  s->set_application_id(d.application_id());
  s->set_environment_id(d.environment_id());
  s->set_plan_id(d.plan_id());
  s->set_deployment_id(d.id());
  s->set_commit_sha(d.revision().sha());
  s->set_ref(d.revision().ref());
  e.set_message(message);
  e.set_idempotency_key("deployment/" + d.id() + "/" + key_suffix);
  auto& f = *e.mutable_details()->mutable_fields();
  f["kind"].set_string_value(v1::DeploymentKind_Name(d.kind()));
  f["state"].set_string_value(v1::DeploymentState_Name(d.state()));
  f["manifests_digest"].set_string_value(d.manifests_digest());
  if (!d.previous_revision().sha().empty()) f["previous_sha"].set_string_value(d.previous_revision().sha());
  if (!d.rollback_of_deployment_id().empty()) f["rollback_of"].set_string_value(d.rollback_of_deployment_id());
  if (!d.restored_deployment_id().empty()) f["restored"].set_string_value(d.restored_deployment_id());
  if (d.recovered()) f["recovered"].set_bool_value(true);
  return e;
}

v1::Event AppEvent(v1::AuditAction action, const std::string& app, const std::string& env, const v1::Actor& actor,
                   const std::string& message, const std::string& idempotency_key,
                   const std::map<std::string, std::string>& details) {
  v1::Event e;
  e.set_action(action);
  *e.mutable_actor() = actor.id().empty() ? FerryActor() : actor;
  e.mutable_subject()->set_application_id(app);
  e.mutable_subject()->set_environment_id(env);
  auto it = details.find("sha");
  if (it != details.end()) e.mutable_subject()->set_commit_sha(it->second);
  it = details.find("deployment_id");
  if (it != details.end()) e.mutable_subject()->set_deployment_id(it->second);
  e.set_message(message);
  e.set_idempotency_key(idempotency_key);
  for (const auto& [k, v] : details) (*e.mutable_details()->mutable_fields())[k].set_string_value(v);
  return e;
}

}  // namespace ferry::deployer
