#include "services/deployer/secrets/secret_resolver.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/process/run_process.h"
#include "ferry/v1/common.pb.h"

namespace ferry::deployer::secrets {
namespace {

absl::Status With(const std::string& field, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(field, ": ", s.message()));
}

constexpr char kAgeBinaryHeader[] = "age-encryption.org/v1\n";
constexpr char kAgeArmorHeader[] = "-----BEGIN AGE ENCRYPTED FILE-----";

bool LooksAge(const std::string& bytes) {
  return absl::StartsWith(bytes, kAgeBinaryHeader) ||
         absl::StartsWith(absl::StripLeadingAsciiWhitespace(bytes), kAgeArmorHeader);
}

// The last line of a tool's error output, short: age's messages name what
// failed ("no identity matched any of the recipients"), never the plaintext,
// which goes to stdout only.
std::string LastLine(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  size_t nl = s.rfind('\n');
  if (nl != std::string::npos) s = s.substr(nl + 1);
  return s.size() > 200 ? s.substr(0, 200) : s;
}

}  // namespace

absl::StatusOr<std::string> SecretResolver::Resolve(const SecretRef& ref) const {
  const std::string& field = ref.field;
  if (!options_.key) {
    return absl::FailedPreconditionError(absl::StrCat(
        field, ": the deployer has no secrets key: start it with --secrets-key-file (`ferry-secrets keygen` makes one)"));
  }
  switch (ref.source) {
    case SecretRef::Source::kEncryptedFile:
      return Decrypt(ref);
    case SecretRef::Source::kFile:
    case SecretRef::Source::kEnv: {
      if (!options_.sources) {
        return absl::FailedPreconditionError(
            absl::StrCat(field, ": the deployer has no secret sources (--secrets-dir, --secret-env-prefix)"));
      }
      v1::SecretRef proto;
      if (ref.source == SecretRef::Source::kFile) {
        proto.set_file(ref.name);
      } else {
        proto.set_env(ref.name);
      }
      return options_.sources->Read(proto, field);
    }
    case SecretRef::Source::kVault: {
      const std::string f = field + ".vault";
      if (!options_.vault) {
        return absl::FailedPreconditionError(
            absl::StrCat(f, ": no Vault configured: start the deployer with --vault-address"));
      }
      absl::StatusOr<std::string> v = options_.vault(ref.name, ref.vault_field);
      if (!v.ok()) return With(f, v.status());
      return v;
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(field, ": unknown source"));
}

absl::StatusOr<std::string> SecretResolver::Decrypt(const SecretRef& ref) const {
  const std::string f = absl::StrCat(ref.field, ".encryptedFile \"", ref.name, "\"");
  if (ref.ciphertext.empty()) return absl::InvalidArgumentError(absl::StrCat(f, ": is empty"));
  if (ferry::secrets::LooksSealed(ref.ciphertext)) {
    absl::StatusOr<std::string> v = options_.key->Open(ref.ciphertext);
    if (!v.ok()) return With(f, v.status());
    return v;
  }
  if (LooksAge(ref.ciphertext)) return DecryptAge(ref);
  return absl::InvalidArgumentError(absl::StrCat(
      f, ": is neither a sealed value (\"", ferry::secrets::kSealedPrefix, "\", from `ferry-secrets seal`) nor an age file"));
}

absl::StatusOr<std::string> SecretResolver::DecryptAge(const SecretRef& ref) const {
  const std::string f = absl::StrCat(ref.field, ".encryptedFile \"", ref.name, "\"");
  if (options_.age_identity_file.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(f, ": is an age file, and the deployer has no age identity: start it with --age-identity-file"));
  }
  // age reads the ciphertext on stdin and writes the plaintext to stdout,
  // which is bounded: more than the largest secret is an error, not memory.
  process::ProcessOptions o;
  o.env = process::MinimalEnvironment("/");
  o.stdin_data = ref.ciphertext;
  o.timeout = options_.age_timeout;
  o.max_stdout_bytes = ferry::secrets::kMaxSealedValueBytes + 1;
  o.kill_at_stdout_limit = true;
  o.max_stderr_bytes = 4096;
  absl::StatusOr<process::ProcessResult> r =
      process::RunProcess({options_.age_binary, "-d", "-i", options_.age_identity_file}, o);
  // Not retried: a missing age binary or a file that keeps age busy fails
  // the deployment (a plan retried on UNAVAILABLE would wait forever).
  if (!r.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(f, ": age could not be run (Debian package age): ",
                                                      r.status().message()));
  }
  if (r->timed_out) {
    return absl::FailedPreconditionError(absl::StrCat(f, ": age did not finish within ",
                                                      absl::FormatDuration(options_.age_timeout)));
  }
  if (r->stdout_truncated || r->stdout_text.size() > ferry::secrets::kMaxSealedValueBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(f, ": decrypts to more than ", ferry::secrets::kMaxSealedValueBytes, " bytes"));
  }
  if (!r->succeeded()) {
    return absl::InvalidArgumentError(absl::StrCat(
        f, ": cannot be decrypted with the deployer's age identity (--age-identity-file): ", LastLine(r->stderr_text)));
  }
  return std::move(r->stdout_text);
}

absl::StatusOr<std::string> SecretResolver::Digest(const std::string& value) const {
  if (!options_.key) return absl::FailedPreconditionError("the deployer has no secrets key (--secrets-key-file)");
  return options_.key->Digest(value);
}

absl::StatusOr<ferry::secrets::SealedBoxKey> ReadSecretsKeyFile(const std::string& path) {
  // Symlinks are followed: a Kubernetes Secret volume's files are symlinks
  // into its ..data folder.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat("--secrets-key-file: \"", path, "\": ", strerror(errno)));
  }
  struct stat st;
  std::string text;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  if (ok && (st.st_mode & 007) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "--secrets-key-file: \"", path, "\" can be read by every user of this machine (chmod 600 it)"));
  }
  char buf[4096];
  ssize_t n;
  while (ok && (n = read(fd, buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || text.size() > 4096) {
      ok = false;
      break;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (!ok) return absl::FailedPreconditionError(absl::StrCat("--secrets-key-file: \"", path, "\" is not a readable key file"));
  absl::StatusOr<ferry::secrets::SealedBoxKey> key = ferry::secrets::SealedBoxKey::FromText(text);
  if (!key.ok()) return absl::FailedPreconditionError(absl::StrCat("--secrets-key-file: \"", path, "\" ", key.status().message()));
  return key;
}

}  // namespace ferry::deployer::secrets
