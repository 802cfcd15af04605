#include "common/auth/authenticator.h"

#include "absl/status/status.h"

namespace ferry::auth {

absl::StatusOr<Principal> Authenticator::Authenticate(const CallCredentials& call) const {
  if (!call.peer_service.empty()) {
    Principal p = ServicePrincipal(call.peer_service);
    p.acting_for = call.on_behalf_of;
    return p;
  }
  if (call.bearer.empty()) return Principal{};
  for (BearerVerifier* v : verifiers_) {
    if (v->Recognizes(call.bearer)) return v->Verify(call.bearer);
  }
  return absl::UnauthenticatedError("the bearer token is neither a Ferry API token nor a JWT");
}

}  // namespace ferry::auth
