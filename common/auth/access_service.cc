#include "common/auth/access_service.h"

#include "common/server/handler.h"

namespace ferry::auth {

grpc::Status AccessService::CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* out) {
  return server::Handle(ctx, *req, out,
                        [&](const Principal& caller) { return admin_->CreateToken(ActorOf(caller), *req); });
}

grpc::Status AccessService::ListTokens(grpc::ServerContext* ctx, const v1::ListTokensRequest* req,
                                       v1::ListTokensResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return admin_->ListTokens(*req); });
}

grpc::Status AccessService::RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                                        v1::RevokeTokenResponse* out) {
  return server::Handle(ctx, *req, out,
                        [&](const Principal& caller) { return admin_->RevokeToken(ActorOf(caller), *req); });
}

grpc::Status AccessService::WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req, v1::WhoAmIResponse* out) {
  return server::Handle(ctx, *req, out,
                        [&](const Principal& caller) { return absl::StatusOr<v1::WhoAmIResponse>(WhoAmIOf(caller)); });
}

void AddAccessRules(AccessControl& access) {
  Rule admin;
  admin.permission = Permission::kAdmin;
  Rule anyone;
  anyone.any_authenticated = true;
  access.AddRule("ferry.v1.CreateTokenRequest", admin);
  access.AddRule("ferry.v1.ListTokensRequest", admin);
  access.AddRule("ferry.v1.RevokeTokenRequest", admin);
  access.AddRule("ferry.v1.WhoAmIRequest", anyone);
}

}  // namespace ferry::auth
