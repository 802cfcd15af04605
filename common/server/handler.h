#pragma once

#include <string>
#include <type_traits>
#include <utility>

#include <google/protobuf/message.h>
#include <grpcpp/server_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/access_control.h"
#include "common/auth/principal.h"
#include "common/concurrency/last_resort.h"
#include "common/status/grpc_status.h"
#include "ferry/v1/common.pb.h"

// What every gRPC handler of every service does around its one call into the
// service's logic: check the request, authenticate and authorise the caller
// (common/auth/access_control.h), and turn the result into the reply.
// Handlers stay one line:
//
//   grpc::Status PlannerService::ApprovePlan(grpc::ServerContext* ctx, const v1::ApprovePlanRequest* req,
//                                            v1::Plan* out) {
//     return server::Handle(ctx, *req, out, [&](const auth::Principal& caller) {
//       return planner_->ApprovePlan(req->plan_id(), auth::ActorOf(caller), req->comment());
//     });
//   }
//
// The function may also take no argument when it does not need the caller.
// No handler decides access on its own, and none reads identity from the
// request or its metadata: the caller is who the credentials prove.
namespace ferry::server {

// Installs the access control every handler consults (main.cc, before
// serving; it must outlive the server). Without one, calls are allowed as
// the user "anonymous" (tests of handlers and logic); every service binary
// installs one, enabled unless started with --insecure-no-auth.
void InstallAccessControl(const auth::AccessControl* access);

// What the call carries that proves who sent it: the verified client
// certificate's service, the bearer token, and x-ferry-on-behalf-of.
auth::CallCredentials CredentialsOf(const grpc::ServerContextBase& context);

// The caller of `request`, authenticated and authorised by the installed
// access control, or its refusal (UNAUTHENTICATED, PERMISSION_DENIED). For
// streaming handlers, which do not go through Handle.
absl::StatusOr<auth::Principal> Authorize(const grpc::ServerContextBase& context,
                                          const google::protobuf::Message& request);

// The installed access control, for scoped checks inside handlers (null
// when none is installed).
const auth::AccessControl* InstalledAccessControl();

// A scoped check inside a handler, where the scope is known only from the
// request's content (PlanRevision with approve also needs kApprove): OK, or
// PERMISSION_DENIED (recorded). OK when no access control is installed.
absl::Status CheckPermission(const auth::Principal& caller, auth::Permission permission, const auth::Scope& scope,
                             const std::string& rpc);

// The checks every request passes before a handler acts on it: OK, or the
// INVALID_ARGUMENT to reply with. Today: no string field anywhere in the
// request holds U+0000 (see RejectNulInStrings).
absl::Status CheckRequest(const google::protobuf::Message& request);

// "handler <request type>" (e.g. "handler ferry.v1.GetPlanRequest"): what a
// caught exception is logged with; the request type names the method.
std::string HandlerName(const google::protobuf::Message& request);

namespace internal {

// Calls fn(caller) or fn(), whichever it takes.
template <typename Fn>
decltype(auto) CallWith(Fn& fn, const auth::Principal& caller) {
  if constexpr (std::is_invocable_v<Fn&, const auth::Principal&>) {
    return fn(caller);
  } else {
    return fn();
  }
}

}  // namespace internal

// Checks `request`, authorises the caller, then runs `fn` (returning
// absl::Status) and maps its status to the reply's. A handler that throws (a
// bug, a third-party call that escaped its wrapper) replies INTERNAL and is
// logged with the request type that names the method
// (concurrency::RunGuarded); the exception never reaches gRPC's thread.
template <typename Fn>
grpc::Status Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Fn&& fn) {
  if (absl::Status bad = CheckRequest(request); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = Authorize(*context, request);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(concurrency::RunGuarded(HandlerName(request), [&] { return internal::CallWith(fn, *caller); }));
}

// A copy of `request` whose `actor` field names the authenticated caller:
// whatever the caller wrote there is ignored (requests that carry an actor
// for the logic's sake: PlanRevision, Rollback, Pin, ...).
template <typename Request>
Request WithCallerAsActor(const Request& request, const auth::Principal& caller) {
  Request copy = request;
  *copy.mutable_actor() = auth::ActorOf(caller);
  return copy;
}

// The reply of a result: its status, and on success the value moved into
// `*out`.
template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

// Checks `request`, authorises the caller, then runs `fn` (returning
// absl::StatusOr<T>) and replies with its result (see Reply). A throwing
// handler replies INTERNAL, as above.
template <typename Out, typename Fn>
grpc::Status Handle(grpc::ServerContext* context, const google::protobuf::Message& request, Out* out, Fn&& fn) {
  if (absl::Status bad = CheckRequest(request); !bad.ok()) return ToGrpcStatus(bad);
  absl::StatusOr<auth::Principal> caller = Authorize(*context, request);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return Reply(concurrency::RunGuarded(HandlerName(request), [&] { return internal::CallWith(fn, *caller); }), out);
}

}  // namespace ferry::server
