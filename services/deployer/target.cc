#include "services/deployer/target.h"

#include "absl/strings/str_cat.h"

namespace ferry::deployer {

std::string ObjectKey::ToString() const { return absl::StrCat(group, "/", kind, "/", namespace_, "/", name); }

ObjectKey ObjectKey::FromProto(const v1::ObjectRef& ref) {
  return ObjectKey{ref.group(), ref.kind(), ref.namespace_(), ref.name()};
}

v1::ObjectRef ObjectKey::ToProto() const {
  v1::ObjectRef ref;
  ref.set_group(group);
  ref.set_kind(kind);
  ref.set_namespace_(namespace_);
  ref.set_name(name);
  return ref;
}

}  // namespace ferry::deployer
