#include "services/deployer/host/secret_values.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace ferry::deployer::host {
namespace {

using nlohmann::json;

absl::Status Prefixed(const std::string& where, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

absl::Status NoResolver(const HostObject& obj, const secrets::SecretRef& ref) {
  return absl::FailedPreconditionError(
      absl::StrCat(obj.where, ": ", ref.field, ": the deployer has no secret sources configured (--secrets-key-file)"));
}

// Resolves `ref` (reading an encrypted file through `fetch` first when there
// is one) and records its digests.
absl::Status PrepareOne(const HostObject& obj, secrets::SecretRef& ref, const secrets::SecretResolver* resolver,
                        const FileFetcher& fetch, const std::string& source_path) {
  if (resolver == nullptr) return NoResolver(obj, ref);
  if (ref.source == secrets::SecretRef::Source::kEncryptedFile) {
    if (fetch) {
      absl::StatusOr<std::string> bytes = fetch(source_path, ref.name);
      if (!bytes.ok()) {
        return absl::Status(bytes.status().code(), absl::StrCat(obj.where, ": ", ref.field, ".encryptedFile \"", ref.name,
                                                                "\": ", bytes.status().message()));
      }
      ref.ciphertext = *std::move(bytes);
    } else if (ref.ciphertext.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(obj.where, ": ", ref.field, ".encryptedFile: no source to read \"", ref.name, "\" from"));
    }
    ref.source_digest = secrets::SourceDigest(ref.ciphertext);
  }
  absl::StatusOr<std::string> value = resolver->Resolve(ref);
  if (!value.ok()) return Prefixed(obj.where, value.status());
  absl::StatusOr<std::string> digest = resolver->Digest(*value);
  if (!digest.ok()) return Prefixed(obj.where, digest.status());
  ref.value_digest = *digest;
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveOne(const HostObject& obj, const secrets::SecretRef& ref,
                                       const secrets::SecretResolver* resolver) {
  if (resolver == nullptr) return NoResolver(obj, ref);
  if (ref.value_digest.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(obj.where, ": ", ref.field, ": has no valueDigest: the object was not prepared by this deployer"));
  }
  absl::StatusOr<std::string> value = resolver->Resolve(ref);
  if (!value.ok()) return Prefixed(obj.where, value.status());
  absl::StatusOr<std::string> digest = resolver->Digest(*value);
  if (!digest.ok()) return Prefixed(obj.where, digest.status());
  if (*digest != ref.value_digest) {
    return absl::FailedPreconditionError(absl::StrCat(
        obj.where, ": ", ref.field, ": the secret changed since this deployment was prepared (value digest ",
        digest->substr(0, 24), "..., recorded ", ref.value_digest.substr(0, 24), "...); deploy again to apply it"));
  }
  return value;
}

}  // namespace

bool HasSecretValues(const HostObject& obj) {
  return (obj.process && !obj.process->secret_env.empty()) || (obj.file && obj.file->secret);
}

absl::Status PrepareSecretValues(HostObject& obj, const secrets::SecretResolver* resolver, const FileFetcher& fetch,
                                 const std::string& source_path) {
  if (obj.file && obj.file->secret) {
    secrets::SecretRef& ref = *obj.file->secret;
    absl::Status s = PrepareOne(obj, ref, resolver, fetch, source_path);
    if (!s.ok()) return s;
    json& spec = obj.doc["spec"];
    spec.erase("content");
    spec.erase("contentBase64");
    spec["contentFrom"] = {{"secretRef", secrets::SecretRefJson(ref)}};
  }
  if (obj.process && !obj.process->secret_env.empty()) {
    json& env = obj.doc["spec"]["env"];
    for (json& entry : env) {
      if (!entry.is_object() || !entry.contains("valueFrom") || !entry.contains("name")) continue;
      auto it = obj.process->secret_env.find(entry["name"].get<std::string>());
      if (it == obj.process->secret_env.end()) continue;
      absl::Status s = PrepareOne(obj, it->second, resolver, fetch, source_path);
      if (!s.ok()) return s;
      entry["valueFrom"] = {{"secretRef", secrets::SecretRefJson(it->second)}};
    }
  }
  return absl::OkStatus();
}

absl::Status ResolveSecretValues(HostObject& obj, const secrets::SecretResolver* resolver) {
  if (obj.file && obj.file->secret) {
    absl::StatusOr<std::string> value = ResolveOne(obj, *obj.file->secret, resolver);
    if (!value.ok()) return value.status();
    obj.file->content = *std::move(value);
  }
  if (obj.process) {
    for (const auto& [name, ref] : obj.process->secret_env) {
      absl::StatusOr<std::string> value = ResolveOne(obj, ref, resolver);
      if (!value.ok()) return value.status();
      obj.process->env[name] = *std::move(value);
    }
  }
  return absl::OkStatus();
}

std::string RedactSecret(std::string text, const std::string& secret) {
  if (secret.empty()) return text;
  std::vector<std::pair<std::string, std::string>> parts = {{secret, "[secret]"}};
  for (absl::string_view line : absl::StrSplit(secret, '\n')) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.size() >= 4) parts.emplace_back(std::string(line), "[secret]");
  }
  // Longest first, so that the whole value goes before its lines.
  std::sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [from, to] : parts) text = absl::StrReplaceAll(text, {{from, to}});
  return text;
}

}  // namespace ferry::deployer::host
