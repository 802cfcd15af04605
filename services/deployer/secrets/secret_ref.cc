#include "services/deployer/secrets/secret_ref.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"

namespace ferry::deployer::secrets {
namespace {

using nlohmann::json;

absl::Status Bad(const std::string& field, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", why));
}

absl::StatusOr<std::string> NonEmptyString(const json& v, const std::string& field) {
  if (!v.is_string() || v.get<std::string>().empty()) return Bad(field, "must be a non-empty string");
  return v.get<std::string>();
}

}  // namespace

absl::StatusOr<SecretRef> ParseSecretRef(const json& ref, const std::string& field) {
  if (!ref.is_object()) return Bad(field, "must be an object with one of encryptedFile, file, env and vault");
  SecretRef out;
  out.field = field;
  int sources = 0;
  for (auto it = ref.begin(); it != ref.end(); ++it) {
    const std::string& key = it.key();
    const std::string f = absl::StrCat(field, ".", key);
    if (key == "encryptedFile" || key == "file" || key == "env") {
      ++sources;
      absl::StatusOr<std::string> s = NonEmptyString(it.value(), f);
      if (!s.ok()) return s.status();
      out.name = *s;
      out.source = key == "encryptedFile" ? SecretRef::Source::kEncryptedFile
                   : key == "file"        ? SecretRef::Source::kFile
                                          : SecretRef::Source::kEnv;
    } else if (key == "vault") {
      ++sources;
      out.source = SecretRef::Source::kVault;
      if (!it.value().is_object()) return Bad(f, "must be an object {path, field}");
      for (auto v = it.value().begin(); v != it.value().end(); ++v) {
        if (v.key() != "path" && v.key() != "field") return Bad(absl::StrCat(f, ".", v.key()), "is not a field of vault (path, field)");
      }
      absl::StatusOr<std::string> path = NonEmptyString(it.value().value("path", json()), f + ".path");
      if (!path.ok()) return path.status();
      absl::StatusOr<std::string> vf = NonEmptyString(it.value().value("field", json()), f + ".field");
      if (!vf.ok()) return vf.status();
      out.name = *path;
      out.vault_field = *vf;
    } else if (key == "ciphertext") {
      if (!it.value().is_string() || !absl::Base64Unescape(it.value().get<std::string>(), &out.ciphertext)) {
        return Bad(f, "must be base64");
      }
    } else if (key == "sourceDigest" || key == "valueDigest") {
      if (!it.value().is_string()) return Bad(f, "must be a string");
      (key == "sourceDigest" ? out.source_digest : out.value_digest) = it.value().get<std::string>();
    } else {
      return Bad(f, "is not a field of secretRef (encryptedFile, file, env, vault)");
    }
  }
  if (sources != 1) return Bad(field, "set exactly one of encryptedFile, file, env and vault");
  if (out.source == SecretRef::Source::kEncryptedFile) {
    const std::string& f = out.name;
    if (f[0] == '/' || f == ".." || f.find("../") != std::string::npos || f.rfind("..", 0) == 0) {
      return Bad(field + ".encryptedFile", absl::StrCat("\"", f, "\" must stay inside the application folder"));
    }
  }
  return out;
}

json SecretRefJson(const SecretRef& ref) {
  json out = json::object();
  switch (ref.source) {
    case SecretRef::Source::kEncryptedFile:
      out["encryptedFile"] = ref.name;
      break;
    case SecretRef::Source::kFile:
      out["file"] = ref.name;
      break;
    case SecretRef::Source::kEnv:
      out["env"] = ref.name;
      break;
    case SecretRef::Source::kVault:
      out["vault"] = {{"path", ref.name}, {"field", ref.vault_field}};
      break;
  }
  if (!ref.ciphertext.empty()) out["ciphertext"] = absl::Base64Escape(ref.ciphertext);
  if (!ref.source_digest.empty()) out["sourceDigest"] = ref.source_digest;
  if (!ref.value_digest.empty()) out["valueDigest"] = ref.value_digest;
  return out;
}

std::string SourceDigest(const std::string& ciphertext) { return absl::StrCat("sha256:", Sha256Hex(ciphertext)); }

}  // namespace ferry::deployer::secrets
