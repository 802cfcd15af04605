#pragma once

#include "common/auth/access_control.h"
#include "common/auth/token_admin.h"
#include "ferry/v1/access.grpc.pb.h"

namespace ferry::auth {

// gRPC handlers of ferry.v1.Access (hosted by the planner): translate,
// delegate to TokenAdmin, map the status. Thread-safe.
class AccessService final : public v1::Access::Service {
 public:
  explicit AccessService(TokenAdmin* admin) : admin_(admin) {}

  grpc::Status CreateToken(grpc::ServerContext*, const v1::CreateTokenRequest*, v1::CreateTokenResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const v1::ListTokensRequest*, v1::ListTokensResponse*) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const v1::RevokeTokenRequest*, v1::RevokeTokenResponse*) override;
  grpc::Status WhoAmI(grpc::ServerContext*, const v1::WhoAmIRequest*, v1::WhoAmIResponse*) override;

 private:
  TokenAdmin* admin_;
};

// The access rules of the Access service: tokens are for admins; anyone
// authenticated may ask who they are.
void AddAccessRules(AccessControl& access);

}  // namespace ferry::auth
