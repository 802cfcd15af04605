#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ferry::audit {

// The text a checkpoint signature covers (see ferry.v1.Checkpoint):
// "ferry-audit-checkpoint/v1\n<sequence>\n<head_hash>\n".
std::string CheckpointMessage(int64_t sequence, absl::string_view head_hash);

// True when `signature` is `public_key`'s Ed25519 signature of the checkpoint.
bool VerifyCheckpointSignature(EVP_PKEY* public_key, int64_t sequence, absl::string_view head_hash,
                               absl::string_view signature);

// Lowercase hex SHA-256 of an Ed25519 key's raw 32-byte public key ("" when
// it has none).
std::string PublicKeyId(EVP_PKEY* key);

// An Ed25519 key pair for signing checkpoints (OpenSSL). Immutable after
// construction; thread-safe.
class CheckpointSigner {
 public:
  // Reads a PEM private key (PKCS#8, as written by `openssl genpkey
  // -algorithm ed25519`) from `path`. When the file does not exist, generates
  // a key, writes it there with mode 0600 (atomically: a concurrent starter
  // loads the winner's key), and sets *generated. Either way the public key
  // is derived in memory, and written as PEM to `<path>.pub` unless that
  // file already holds it; a failure to write it (a read-only key mount) is
  // not an error: it goes to *public_key_written when given (OK otherwise).
  // INVALID_ARGUMENT when the file is not an Ed25519 private key; INTERNAL
  // on I/O errors reading or creating the private key.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> LoadOrGenerate(
      const std::string& path, bool* generated, absl::Status* public_key_written = nullptr);
  // A signer with a fresh key kept only in memory (--trial-ephemeral-key):
  // its checkpoints cannot be verified once the process is gone.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> GenerateEphemeral();
  // A signer from a PEM private key in memory.
  static absl::StatusOr<std::unique_ptr<CheckpointSigner>> FromPem(absl::string_view pem);

  ~CheckpointSigner();
  CheckpointSigner(const CheckpointSigner&) = delete;
  CheckpointSigner& operator=(const CheckpointSigner&) = delete;

  // The raw 64-byte signature of CheckpointMessage(sequence, head_hash).
  absl::StatusOr<std::string> Sign(int64_t sequence, absl::string_view head_hash) const;
  // True when `signature` is this key's signature of the checkpoint.
  bool Verify(int64_t sequence, absl::string_view head_hash, absl::string_view signature) const;

  // Lowercase hex SHA-256 of the raw 32-byte public key.
  const std::string& public_key_id() const { return public_key_id_; }
  // The public key as PEM (SubjectPublicKeyInfo).
  const std::string& public_key_pem() const { return public_key_pem_; }

 private:
  explicit CheckpointSigner(EVP_PKEY* key);
  EVP_PKEY* key_;
  std::string public_key_id_;
  std::string public_key_pem_;
};

}  // namespace ferry::audit
