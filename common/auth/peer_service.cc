// PeerServiceOf (declared in tls.h): the Ferry service a verified peer
// certificate names.
#include <string>

#include <grpc/grpc_security_constants.h>

#include "absl/strings/match.h"
#include "common/auth/tls.h"

namespace ferry::auth {

std::string PeerServiceOf(const grpc::AuthContext& context) {
  if (!context.IsPeerAuthenticated()) return "";
  constexpr absl::string_view kPrefix = "spiffe://ferry/";
  for (const char* property : {GRPC_PEER_SPIFFE_ID_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
      absl::string_view uri(value.data(), value.size());
      if (!absl::StartsWith(uri, kPrefix)) continue;
      absl::string_view service = uri.substr(kPrefix.size());
      if (!service.empty() && service.find('/') == absl::string_view::npos) return std::string(service);
    }
  }
  return "";
}

}  // namespace ferry::auth
