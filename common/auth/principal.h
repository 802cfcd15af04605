#pragma once

#include <string>
#include <vector>

#include "ferry/v1/common.pb.h"

// Who made a call, once authenticated (common/auth/authenticator.h). The one
// identity every authorization decision and every audit event uses; nothing a
// caller writes into a request or its metadata changes it, except a Ferry
// service naming the person it acts for (acting_for).
namespace ferry::auth {

enum class PrincipalKind {
  kAnonymous,  // no credentials: refused by every rule but the public ones
  kUser,       // a person or robot: an API token or an OIDC token
  kService,    // a Ferry service: a client certificate from the suite's CA
};

struct Principal {
  PrincipalKind kind = PrincipalKind::kAnonymous;
  // A user name ("alice", "ci-bot", an e-mail from OIDC) or a service name
  // ("planner", "deployer", "repo-watcher", "audit").
  std::string id;
  // Groups the identity belongs to: an OIDC groups claim, a token's groups.
  std::vector<std::string> groups;
  // How it was proved, for audit and logs, never the secret:
  // "token:<token id>", "oidc:<issuer>", "mtls", or "" (anonymous or
  // access control switched off).
  std::string method;
  // Set only for a service principal that names, with the
  // x-ferry-on-behalf-of metadata, the user it acts for (the deployer running
  // a person's rollback). Empty otherwise.
  std::string acting_for;
};

// "user:alice", "service:deployer", "anonymous": how policy bindings name a
// principal (common/auth/policy.h).
std::string SubjectOf(const Principal& p);

// The audit actor for a principal: the user it acts for when a service acts
// for one (display_name "alice via deployer"), else the principal itself
// (users ACTOR_KIND_USER, services ACTOR_KIND_SERVICE, anonymous the user
// "anonymous").
v1::Actor ActorOf(const Principal& p);

// A service principal, as the suite's own background work acts (tests).
Principal ServicePrincipal(std::string service);

// A user principal (tests, and access control switched off).
Principal UserPrincipal(std::string id, std::vector<std::string> groups = {});

}  // namespace ferry::auth
