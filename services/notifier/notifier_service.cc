#include "services/notifier/notifier_service.h"

#include "common/server/handler.h"

namespace ferry::notifier {

grpc::Status NotifierService::CreateSubscription(grpc::ServerContext* ctx, const v1::CreateSubscriptionRequest* req,
                                                 v1::Subscription* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return manager_.Create(req->subscription(), auth::ActorOf(caller));
  });
}

grpc::Status NotifierService::DeleteSubscription(grpc::ServerContext* ctx, const v1::DeleteSubscriptionRequest* req,
                                                 v1::DeleteSubscriptionResponse*) {
  return server::Handle(ctx, *req, [&](const auth::Principal& caller) {
    return manager_.Delete(req->name(), auth::ActorOf(caller));
  });
}

grpc::Status NotifierService::ListSubscriptions(grpc::ServerContext* ctx, const v1::ListSubscriptionsRequest* req,
                                                v1::ListSubscriptionsResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return manager_.List(); });
}

grpc::Status NotifierService::ListDeliveries(grpc::ServerContext* ctx, const v1::ListDeliveriesRequest* req,
                                             v1::ListDeliveriesResponse* out) {
  return server::Handle(ctx, *req, out, [&] { return manager_.ListDeliveries(*req); });
}

grpc::Status NotifierService::TestSubscription(grpc::ServerContext* ctx, const v1::TestSubscriptionRequest* req,
                                               v1::TestSubscriptionResponse* out) {
  return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
    return manager_.Test(req->name(), req->event(), auth::ActorOf(caller));
  });
}

}  // namespace ferry::notifier
