#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "services/deployer/secrets/secret_resolver.h"

namespace ferry::deployer::secrets {

// The deployer's application-secret flags, as given.
struct SecretFlags {
  std::string secrets_key_file;   // --secrets-key-file
  std::string age_identity_file;  // --age-identity-file
  std::string secrets_dir;        // --secrets-dir
  std::string env_prefix = "FERRY_SECRET_";  // --secret-env-prefix
};

// The resolver's options from the flags (the key file read and checked, the
// secrets directory checked, the age identity file checked to exist and not
// be readable by every user); FAILED_PRECONDITION naming the flag. The Vault lookup is left
// for main.cc to set.
absl::StatusOr<SecretResolverOptions> OptionsFromFlags(const SecretFlags& flags);

}  // namespace ferry::deployer::secrets
