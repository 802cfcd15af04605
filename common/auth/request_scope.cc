#include "common/auth/request_scope.h"

#include <string>

#include <google/protobuf/descriptor.h>

namespace ferry::auth {
namespace {

std::string StringField(const google::protobuf::Message& m, const char* name) {
  const google::protobuf::FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr || f->type() != google::protobuf::FieldDescriptor::TYPE_STRING || f->is_repeated()) return "";
  return m.GetReflection()->GetString(m, f);
}

}  // namespace

Scope ScopeOfFields(const google::protobuf::Message& request) {
  Scope scope;
  scope.application = StringField(request, "application_id");
  scope.environment = StringField(request, "environment_id");
  return scope;
}

}  // namespace ferry::auth
