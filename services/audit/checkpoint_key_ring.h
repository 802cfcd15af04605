#pragma once

#include <openssl/evp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ferry/v1/audit.pb.h"
#include "services/audit/checkpoint_signer.h"

namespace ferry::audit {

// The public keys whose checkpoints are trusted (--trusted-checkpoint-keys),
// by public_key_id. The current signer's key is always among them, so a
// rotated-out key keeps verifying the checkpoints it signed once its public
// key is listed. Built at startup, then immutable; thread-safe to read.
class CheckpointKeyRing {
 public:
  // Trusts `signer`'s public key.
  explicit CheckpointKeyRing(const CheckpointSigner& signer);
  ~CheckpointKeyRing();
  CheckpointKeyRing(const CheckpointKeyRing&) = delete;
  CheckpointKeyRing& operator=(const CheckpointKeyRing&) = delete;

  // Adds the Ed25519 public keys (PEM "PUBLIC KEY" blocks, as in the
  // `<key file>.pub` the service writes) of `path`: a file holding one or
  // more of them, or a directory whose every `*.pub` file does (other files
  // are skipped, so the key's own directory can be named). INVALID_ARGUMENT
  // naming the file when one holds no such key or is not Ed25519.
  absl::Status AddFromPath(const std::string& path);
  // Adds the public keys of PEM text; `source` names it in errors.
  absl::Status AddPem(absl::string_view pem, const std::string& source);

  // OK when the checkpoint is signed by a trusted key and its signature
  // verifies; else FAILED_PRECONDITION saying which ("signed by untrusted
  // key <id>", "signature does not verify").
  absl::Status Verify(const v1::Checkpoint& checkpoint) const;

  // The trusted key ids, sorted.
  std::vector<std::string> key_ids() const;

 private:
  struct FreeKey {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  };
  std::map<std::string, std::unique_ptr<EVP_PKEY, FreeKey>> keys_;
};

}  // namespace ferry::audit
