#pragma once

#include <string>

#include "common/git/git_repository.h"
#include "ferry/v1/repo_watcher.pb.h"

namespace ferry::repo_watcher {

// Outcome of checking one commit's signature against a policy's keys.
struct SignatureCheck {
  v1::SignatureResult result = v1::SIGNATURE_RESULT_NOT_CHECKED;
  v1::SignatureType type = v1::SIGNATURE_TYPE_UNSPECIFIED;
  std::string signer;  // PGP fingerprint or SSH principal
  std::string reason;  // human-readable explanation

  bool passed() const {
    return result == v1::SIGNATURE_RESULT_VALID || result == v1::SIGNATURE_RESULT_NOT_CHECKED;
  }
};

// Verifies commit signatures. Implementations are thread-safe.
class SignatureVerifier {
 public:
  virtual ~SignatureVerifier() = default;
  // Checks `commit` against the trusted keys of `policy` (its mode is not
  // consulted). Never fails: tool errors become SIGNATURE_RESULT_ERROR.
  virtual SignatureCheck Verify(const git::Commit& commit, const v1::SignaturePolicy& policy) = 0;
};

// OpenPGP signatures through gpgme, against only the policy's trusted keys
// imported into a private, temporary GNUPGHOME per check; SSH signatures the
// way git checks them (`ssh-keygen -Y check-novalidate`, `find-principals`,
// `verify` with namespace "git") against the policy's allowed signers.
// `ssh_keygen` is the program run for the SSH checks (a bare name is looked
// up in PATH).
class GpgmeSshSignatureVerifier final : public SignatureVerifier {
 public:
  explicit GpgmeSshSignatureVerifier(std::string ssh_keygen = "ssh-keygen");
  SignatureCheck Verify(const git::Commit& commit, const v1::SignaturePolicy& policy) override;

 private:
  SignatureCheck VerifyPgp(const git::Commit& commit, const v1::SignaturePolicy& policy);
  SignatureCheck VerifySsh(const git::Commit& commit, const v1::SignaturePolicy& policy);

  const std::string ssh_keygen_;
};

// Lower-case name of a result for metrics and logs: "valid", "unsigned", ...
std::string SignatureResultName(v1::SignatureResult result);

}  // namespace ferry::repo_watcher
