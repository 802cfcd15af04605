#include "common/kube/secret_mask.h"

#include <string>

#include "absl/strings/escaping.h"
#include "common/crypto/sha256.h"

namespace ferry::kube {

bool IsSecret(const nlohmann::json& object) {
  if (!object.is_object()) return false;
  auto kind = object.find("kind");
  auto api = object.find("apiVersion");
  return kind != object.end() && kind->is_string() && *kind == "Secret" && api != object.end() && api->is_string() &&
         *api == "v1";
}

namespace {

std::string Digest(const std::string& bytes) { return "sha256:" + Sha256Hex(bytes); }

}  // namespace

void MaskSecretValues(nlohmann::json& object) {
  if (!IsSecret(object)) return;
  for (const char* field : {"data", "stringData"}) {
    auto values = object.find(field);
    if (values == object.end()) continue;
    if (!values->is_object()) {
      *values = "(masked)";
      continue;
    }
    for (auto& [key, value] : values->items()) {
      if (!value.is_string()) {
        value = "(masked)";
        continue;
      }
      std::string bytes = value.get<std::string>();
      std::string decoded;
      if (std::string(field) == "data" && absl::Base64Unescape(bytes, &decoded)) bytes = std::move(decoded);
      value = Digest(bytes);
    }
  }
  auto meta = object.find("metadata");
  if (meta != object.end() && meta->is_object()) {
    auto ann = meta->find("annotations");
    if (ann != meta->end() && ann->is_object()) ann->erase("kubectl.kubernetes.io/last-applied-configuration");
  }
}

}  // namespace ferry::kube
