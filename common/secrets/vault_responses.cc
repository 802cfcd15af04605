#include "common/secrets/vault_responses.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/json/json.h"
#include "common/text/utf8.h"

namespace ferry::secrets {
namespace {

// Answers are bounded by the transport; a secret is never deeply nested.
constexpr JsonLimits kLimits{.max_depth = 64};

}  // namespace

absl::StatusOr<std::string> KvV2Field(const std::string& body, const std::string& where, const std::string& field) {
  absl::StatusOr<nlohmann::json> json = ParseJson(body, kLimits);
  if (!json.ok() || !json->is_object()) {
    return absl::InternalError(absl::StrCat("vault: the answer for secret \"", where, "\" is not JSON"));
  }
  auto outer = json->find("data");
  if (outer == json->end() || !outer->is_object()) {
    return absl::InternalError(absl::StrCat("vault: the answer for secret \"", where,
                                            "\" is not a KV version 2 read (no data; is the mount KV v2?)"));
  }
  auto data = outer->find("data");
  auto metadata = outer->find("metadata");
  if (metadata == outer->end()) {
    return absl::InternalError(absl::StrCat("vault: the answer for secret \"", where,
                                            "\" is not a KV version 2 read (no metadata; is the mount KV v2?)"));
  }
  if (data == outer->end() || data->is_null()) {
    return absl::NotFoundError(
        absl::StrCat("vault: secret \"", where, "\" has no current version (deleted or destroyed)"));
  }
  if (!data->is_object()) {
    return absl::InternalError(absl::StrCat("vault: the answer for secret \"", where, "\" has data that is not an object"));
  }
  auto value = data->find(field);
  if (value == data->end()) {
    return absl::NotFoundError(absl::StrCat("vault: secret \"", where, "\" has no field \"", field, "\""));
  }
  if (!value->is_string()) {
    return absl::FailedPreconditionError(absl::StrCat("vault: field \"", field, "\" of secret \"", where, "\" is a ",
                                                      value->type_name(), ", not a string"));
  }
  return value->get_ref<const std::string&>();
}

bool IsDeletedVersion(const std::string& body) {
  absl::StatusOr<nlohmann::json> json = ParseJson(body, kLimits);
  if (!json.ok() || !json->is_object()) return false;
  auto outer = json->find("data");
  if (outer == json->end() || !outer->is_object()) return false;
  auto metadata = outer->find("metadata");
  auto data = outer->find("data");
  return metadata != outer->end() && metadata->is_object() && (data == outer->end() || data->is_null());
}

absl::StatusOr<VaultLogin> ParseLogin(const std::string& body) {
  absl::StatusOr<nlohmann::json> json = ParseJson(body, kLimits);
  if (!json.ok() || !json->is_object()) return absl::InternalError("vault: the login answer is not JSON");
  auto auth = json->find("auth");
  if (auth == json->end() || !auth->is_object()) return absl::InternalError("vault: the login answer has no auth");
  auto token = auth->find("client_token");
  if (token == auth->end() || !token->is_string() || token->get_ref<const std::string&>().empty()) {
    return absl::InternalError("vault: the login answer has no auth.client_token");
  }
  VaultLogin login;
  login.token = token->get_ref<const std::string&>();
  auto lease = auth->find("lease_duration");
  if (lease != auth->end() && lease->is_number_integer() && lease->get<int64_t>() > 0) {
    login.lease = absl::Seconds(lease->get<int64_t>());
  }
  auto renewable = auth->find("renewable");
  login.renewable = renewable != auth->end() && renewable->is_boolean() && renewable->get<bool>();
  return login;
}

std::string VaultErrors(const std::string& body) {
  absl::StatusOr<nlohmann::json> json = ParseJson(body, kLimits);
  if (!json.ok() || !json->is_object()) return "";
  auto errors = json->find("errors");
  if (errors == json->end() || !errors->is_array()) return "";
  std::vector<std::string> parts;
  for (const nlohmann::json& e : *errors) {
    if (e.is_string() && !e.get_ref<const std::string&>().empty()) parts.push_back(e.get_ref<const std::string&>());
  }
  std::string joined = absl::StrJoin(parts, "; ");
  if (joined.size() > 300) joined = joined.substr(0, 297) + "...";
  return text::SanitizeUtf8(joined);
}

}  // namespace ferry::secrets
