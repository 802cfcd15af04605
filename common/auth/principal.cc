#include "common/auth/principal.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace ferry::auth {

std::string SubjectOf(const Principal& p) {
  switch (p.kind) {
    case PrincipalKind::kUser:
      return absl::StrCat("user:", p.id);
    case PrincipalKind::kService:
      return absl::StrCat("service:", p.id);
    case PrincipalKind::kAnonymous:
      break;
  }
  return "anonymous";
}

v1::Actor ActorOf(const Principal& p) {
  v1::Actor actor;
  if (p.kind == PrincipalKind::kService && !p.acting_for.empty()) {
    actor.set_kind(v1::ACTOR_KIND_USER);
    actor.set_id(p.acting_for);
    actor.set_display_name(absl::StrCat(p.acting_for, " via ", p.id));
    return actor;
  }
  switch (p.kind) {
    case PrincipalKind::kService:
      actor.set_kind(v1::ACTOR_KIND_SERVICE);
      actor.set_id(p.id);
      break;
    case PrincipalKind::kUser:
      actor.set_kind(v1::ACTOR_KIND_USER);
      actor.set_id(p.id);
      break;
    case PrincipalKind::kAnonymous:
      actor.set_kind(v1::ACTOR_KIND_USER);
      actor.set_id("anonymous");
      break;
  }
  return actor;
}

Principal ServicePrincipal(std::string service) {
  Principal p;
  p.kind = PrincipalKind::kService;
  p.id = std::move(service);
  p.method = "mtls";
  return p;
}

Principal UserPrincipal(std::string id, std::vector<std::string> groups) {
  Principal p;
  p.kind = PrincipalKind::kUser;
  p.id = std::move(id);
  p.groups = std::move(groups);
  return p;
}

}  // namespace ferry::auth
