#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/concurrency/last_resort.h"
#include "common/status/grpc_status.h"
#include "ferry/v1/common.pb.h"

// What every gRPC handler of every service does around its one call into the
// service's logic: check the request, learn who is calling, and turn the
// result into the reply. Handlers stay one line:
//
//   grpc::Status PlannerService::GetPlan(grpc::ServerContext*, const v1::GetPlanRequest* req, v1::Plan* out) {
//     return server::Handle(*req, out, [&] { return planner_->GetPlan(req->plan_id()); });
//   }
//
// The next issues add authentication and authorisation here, in CallerOf and
// CheckRequest, so that no handler decides them on its own.
namespace ferry::server {

// Who made the call, for audit events and (later) access control. The one
// place that decides it. Today Ferry has no authentication: the
// "x-ferry-actor" metadata names the caller (a user) when given and not
// empty; otherwise the caller is the user "anonymous".
v1::Actor CallerOf(const grpc::ServerContext& context);

// The checks every request passes before a handler acts on it: OK, or the
// INVALID_ARGUMENT to reply with. Today: no string field anywhere in the
// request holds U+0000 (see RejectNulInStrings).
absl::Status CheckRequest(const google::protobuf::Message& request);

// "handler <request type>" (e.g. "handler ferry.v1.GetPlanRequest"): what a
// caught exception is logged with; the request type names the method.
std::string HandlerName(const google::protobuf::Message& request);

// Checks `request`, then runs `fn` (returning absl::Status) and maps its
// status to the reply's. A handler that throws (a bug, a third-party call
// that escaped its wrapper) replies INTERNAL and is logged with the request
// type that names the method (concurrency::RunGuarded); the exception never
// reaches gRPC's thread (std::terminate).
template <typename Fn>
grpc::Status Handle(const google::protobuf::Message& request, Fn&& fn) {
  if (absl::Status bad = CheckRequest(request); !bad.ok()) return ToGrpcStatus(bad);
  return ToGrpcStatus(concurrency::RunGuarded(HandlerName(request), std::forward<Fn>(fn)));
}

// The reply of a result: its status, and on success the value moved into
// `*out`.
template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

// Checks `request`, then runs `fn` (returning absl::StatusOr<T>) and replies
// with its result (see Reply). A throwing handler replies INTERNAL, as above.
template <typename Out, typename Fn>
grpc::Status Handle(const google::protobuf::Message& request, Out* out, Fn&& fn) {
  if (absl::Status bad = CheckRequest(request); !bad.ok()) return ToGrpcStatus(bad);
  return Reply(concurrency::RunGuarded(HandlerName(request), std::forward<Fn>(fn)), out);
}

}  // namespace ferry::server
