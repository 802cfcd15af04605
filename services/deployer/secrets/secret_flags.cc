#include "services/deployer/secrets/secret_flags.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace ferry::deployer::secrets {

absl::StatusOr<SecretResolverOptions> OptionsFromFlags(const SecretFlags& flags) {
  SecretResolverOptions out;
  if (!flags.secrets_key_file.empty()) {
    absl::StatusOr<ferry::secrets::SealedBoxKey> key = ReadSecretsKeyFile(flags.secrets_key_file);
    if (!key.ok()) return key.status();
    out.key = *std::move(key);
  }
  if (!flags.age_identity_file.empty()) {
    struct stat st;
    if (stat(flags.age_identity_file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--age-identity-file: \"", flags.age_identity_file, "\" is not a regular file"));
    }
    if ((st.st_mode & 007) != 0) {
      return absl::FailedPreconditionError(absl::StrCat("--age-identity-file: \"", flags.age_identity_file,
                                                        "\" can be read by every user of this machine (chmod 600 it)"));
    }
    out.age_identity_file = flags.age_identity_file;
  }
  absl::StatusOr<ferry::secrets::SecretSources> sources = ferry::secrets::SecretSources::Create(
      {.service = "deployer", .secrets_dir = flags.secrets_dir, .env_prefix = flags.env_prefix});
  if (!sources.ok()) return sources.status();
  out.sources = *std::move(sources);
  return out;
}

}  // namespace ferry::deployer::secrets
