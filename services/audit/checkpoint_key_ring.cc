#include "services/audit/checkpoint_key_ring.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ferry::audit {

CheckpointKeyRing::CheckpointKeyRing(const CheckpointSigner& signer) {
  // The signer's own public key, read back from its PEM.
  absl::Status added = AddPem(signer.public_key_pem(), "the signing key");
  (void)added;  // the signer's own PEM always parses
}

CheckpointKeyRing::~CheckpointKeyRing() = default;

absl::Status CheckpointKeyRing::AddPem(absl::string_view pem, const std::string& source) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int added = 0;
  absl::Status status;
  while (status.ok()) {
    EVP_PKEY* key = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    if (key == nullptr) break;
    if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
      status = absl::InvalidArgumentError(absl::StrCat("--trusted-checkpoint-keys ", source,
                                                       ": holds a public key that is not Ed25519"));
      EVP_PKEY_free(key);
      break;
    }
    std::string id = PublicKeyId(key);
    if (!keys_.try_emplace(id, key).second) EVP_PKEY_free(key);  // a key listed twice is kept once
    ++added;
  }
  BIO_free(bio);
  ERR_clear_error();  // the read that found no further block left its error
  if (status.ok() && added == 0) {
    status = absl::InvalidArgumentError(
        absl::StrCat("--trusted-checkpoint-keys ", source, ": holds no PEM public key (BEGIN PUBLIC KEY)"));
  }
  return status;
}

absl::Status CheckpointKeyRing::AddFromPath(const std::string& path) {
  std::error_code ec;
  std::vector<std::string> files;
  if (std::filesystem::is_directory(path, ec)) {
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      const std::string name = entry.path().string();
      if (entry.is_regular_file() && absl::EndsWith(name, ".pub")) files.push_back(name);
    }
    if (ec) return absl::InvalidArgumentError(absl::StrCat("--trusted-checkpoint-keys ", path, ": ", ec.message()));
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--trusted-checkpoint-keys ", path, ": no *.pub file in it"));
    }
  } else {
    files.push_back(path);
  }
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--trusted-checkpoint-keys ", file, ": cannot read it"));
    std::stringstream text;
    text << in.rdbuf();
    absl::Status added = AddPem(text.str(), file);
    if (!added.ok()) return added;
  }
  return absl::OkStatus();
}

absl::Status CheckpointKeyRing::Verify(const v1::Checkpoint& c) const {
  auto key = keys_.find(c.public_key_id());
  if (key == keys_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint at ", c.sequence(), " is signed by untrusted key ", c.public_key_id(),
                     " (not the signing key nor in --trusted-checkpoint-keys)"));
  }
  if (!VerifyCheckpointSignature(key->second.get(), c.sequence(), c.head_hash(), c.signature())) {
    return absl::FailedPreconditionError(
        absl::StrCat("checkpoint at ", c.sequence(), ": signature does not verify (key ", c.public_key_id(), ")"));
  }
  return absl::OkStatus();
}

std::vector<std::string> CheckpointKeyRing::key_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, key] : keys_) ids.push_back(id);
  return ids;
}

}  // namespace ferry::audit
