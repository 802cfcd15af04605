#pragma once

#include "ferry/v1/notifier.grpc.pb.h"
#include "services/notifier/subscription_manager.h"

namespace ferry::notifier {

// Thin gRPC handlers of ferry.v1.Notifier.
class NotifierService final : public v1::Notifier::Service {
 public:
  explicit NotifierService(SubscriptionManager& manager) : manager_(manager) {}

  grpc::Status CreateSubscription(grpc::ServerContext* ctx, const v1::CreateSubscriptionRequest* req,
                                  v1::Subscription* out) override;
  grpc::Status DeleteSubscription(grpc::ServerContext* ctx, const v1::DeleteSubscriptionRequest* req,
                                  v1::DeleteSubscriptionResponse* out) override;
  grpc::Status ListSubscriptions(grpc::ServerContext* ctx, const v1::ListSubscriptionsRequest* req,
                                 v1::ListSubscriptionsResponse* out) override;
  grpc::Status ListDeliveries(grpc::ServerContext* ctx, const v1::ListDeliveriesRequest* req,
                              v1::ListDeliveriesResponse* out) override;
  grpc::Status TestSubscription(grpc::ServerContext* ctx, const v1::TestSubscriptionRequest* req,
                                v1::TestSubscriptionResponse* out) override;

 private:
  SubscriptionManager& manager_;
};

}  // namespace ferry::notifier
