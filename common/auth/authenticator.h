#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/auth/bearer_verifier.h"
#include "common/auth/principal.h"

namespace ferry::auth {

// What a call carries that can prove who sent it, as the transport gives it
// (common/server/call_credentials.h reads it off a grpc::ServerContext).
struct CallCredentials {
  // The Ferry service named by the verified client certificate
  // (spiffe://ferry/<service>); empty when the peer sent none or its
  // certificate names no Ferry service.
  std::string peer_service;
  // The value after "Bearer " of the authorization metadata; empty if none.
  std::string bearer;
  // The x-ferry-on-behalf-of metadata ("alice"); honoured only from a
  // service, ignored from anyone else.
  std::string on_behalf_of;
};

// Decides who a call comes from. A service certificate wins; then the bearer
// token, checked by the first verifier that recognises its shape; no
// credentials make the anonymous principal (which authorization refuses with
// UNAUTHENTICATED). A bearer token no verifier recognises, or one that fails
// its check, is UNAUTHENTICATED. Thread-safe.
class Authenticator {
 public:
  explicit Authenticator(std::vector<BearerVerifier*> verifiers) : verifiers_(std::move(verifiers)) {}

  absl::StatusOr<Principal> Authenticate(const CallCredentials& call) const;

 private:
  std::vector<BearerVerifier*> verifiers_;
};

}  // namespace ferry::auth
