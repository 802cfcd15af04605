#include "common/server/handler.h"

#include <string>

#include "common/status/nul_free.h"

namespace ferry::server {

v1::Actor CallerOf(const grpc::ServerContext& context) {
  v1::Actor actor;
  actor.set_kind(v1::ACTOR_KIND_USER);
  auto it = context.client_metadata().find("x-ferry-actor");
  if (it != context.client_metadata().end() && !it->second.empty()) {
    actor.set_id(std::string(it->second.data(), it->second.size()));
  } else {
    actor.set_id("anonymous");
  }
  return actor;
}

absl::Status CheckRequest(const google::protobuf::Message& request) { return RejectNulInStrings(request); }

std::string HandlerName(const google::protobuf::Message& request) {
  return "handler " + request.GetDescriptor()->full_name();
}

}  // namespace ferry::server
