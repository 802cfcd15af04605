#include "common/auth/access_service.h"

#include "common/server/handler.h"

namespace ferry::auth {

// Until server::Handle passes the authenticated principal, the caller is
// server::CallerOf's actor, taken as a user principal (no method).
namespace {
Principal PrincipalOfCaller(const grpc::ServerContext& ctx) {
  v1::Actor actor = server::CallerOf(ctx);
  return actor.id() == "anonymous" ? Principal{} : UserPrincipal(actor.id());
}
}  // namespace

grpc::Status AccessService::CreateToken(grpc::ServerContext* ctx, const v1::CreateTokenRequest* req,
                                        v1::CreateTokenResponse* out) {
  return server::Handle(*req, out, [&] { return admin_->CreateToken(server::CallerOf(*ctx), *req); });
}

grpc::Status AccessService::ListTokens(grpc::ServerContext*, const v1::ListTokensRequest* req,
                                       v1::ListTokensResponse* out) {
  return server::Handle(*req, out, [&] { return admin_->ListTokens(*req); });
}

grpc::Status AccessService::RevokeToken(grpc::ServerContext* ctx, const v1::RevokeTokenRequest* req,
                                        v1::RevokeTokenResponse* out) {
  return server::Handle(*req, out, [&] { return admin_->RevokeToken(server::CallerOf(*ctx), *req); });
}

grpc::Status AccessService::WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req, v1::WhoAmIResponse* out) {
  return server::Handle(*req, out, [&] { return absl::StatusOr<v1::WhoAmIResponse>(WhoAmIOf(PrincipalOfCaller(*ctx))); });
}

}  // namespace ferry::auth
