#include "services/audit/checkpoint_signer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/crypto/sha256.h"

namespace ferry::audit {
namespace {

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Writes `content` to `path` through a temporary file. With keep_existing an
// existing file wins (*created = false).
absl::Status WriteFileAtomically(const std::string& path, const std::string& content, mode_t mode,
                                 bool keep_existing, bool* created = nullptr) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  // link() refuses to replace an existing file: the first starter wins.
  int rc = keep_existing ? link(tmp.c_str(), path.c_str()) : rename(tmp.c_str(), path.c_str());
  int err = errno;
  if (keep_existing || rc != 0) unlink(tmp.c_str());  // a failed rename leaves it
  if (rc != 0 && !(keep_existing && err == EEXIST)) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(err)));
  }
  if (created != nullptr) *created = rc == 0;
  return absl::OkStatus();
}

}  // namespace

std::string CheckpointMessage(int64_t sequence, absl::string_view head_hash) {
  return absl::StrCat("ferry-audit-checkpoint/v1\n", sequence, "\n", std::string(head_hash), "\n");
}

std::string PublicKeyId(EVP_PKEY* key) {
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1) return "";
  return HexEncode(Sha256(absl::string_view(reinterpret_cast<const char*>(raw), len)));
}

bool VerifyCheckpointSignature(EVP_PKEY* public_key, int64_t sequence, absl::string_view head_hash,
                               absl::string_view signature) {
  std::string message = CheckpointMessage(sequence, head_hash);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, public_key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                             reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

CheckpointSigner::CheckpointSigner(EVP_PKEY* key) : key_(key) {
  public_key_id_ = PublicKeyId(key_);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, key_);
  public_key_pem_ = BioToString(bio);
  BIO_free(bio);
}

CheckpointSigner::~CheckpointSigner() { EVP_PKEY_free(key_); }

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::FromPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) return absl::InvalidArgumentError("not a PEM private key");
  if (EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError("not an Ed25519 private key");
  }
  return std::unique_ptr<CheckpointSigner>(new CheckpointSigner(key));
}

namespace {

EVP_PKEY* GenerateKey() {
  EVP_PKEY* key = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  bool ok = ctx != nullptr && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &key) == 1;
  EVP_PKEY_CTX_free(ctx);
  if (!ok) {
    EVP_PKEY_free(key);
    return nullptr;
  }
  return key;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::GenerateEphemeral() {
  EVP_PKEY* key = GenerateKey();
  if (key == nullptr) return absl::InternalError("cannot generate an Ed25519 key");
  return std::unique_ptr<CheckpointSigner>(new CheckpointSigner(key));
}

absl::StatusOr<std::unique_ptr<CheckpointSigner>> CheckpointSigner::LoadOrGenerate(const std::string& path,
                                                                                   bool* generated,
                                                                                   absl::Status* public_key_written) {
  *generated = false;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    EVP_PKEY* key = GenerateKey();
    if (key == nullptr) return absl::InternalError("cannot generate an Ed25519 key");
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::string pem = BioToString(bio);
    BIO_free(bio);
    EVP_PKEY_free(key);
    absl::Status written = WriteFileAtomically(path, pem, 0600, /*keep_existing=*/true, generated);
    if (!written.ok()) return written;
  }
  absl::StatusOr<std::string> pem = ReadFile(path);
  if (!pem.ok()) return pem.status();
  absl::StatusOr<std::unique_ptr<CheckpointSigner>> signer = FromPem(*pem);
  if (!signer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--checkpoint-key-file ", path, ": ", signer.status().message()));
  }
  // The public key is derived from the private one in memory; the .pub file
  // is only a convenience for verifiers. A key on a read-only mount (a
  // Kubernetes Secret) has no writable folder beside it: that is no reason
  // not to start. An up-to-date .pub is left alone.
  const std::string pub_path = path + ".pub";
  absl::Status pub = absl::OkStatus();
  absl::StatusOr<std::string> existing_pub = ReadFile(pub_path);
  if (!existing_pub.ok() || *existing_pub != (*signer)->public_key_pem()) {
    pub = WriteFileAtomically(pub_path, (*signer)->public_key_pem(), 0644, /*keep_existing=*/false);
  }
  if (public_key_written != nullptr) *public_key_written = pub;
  return signer;
}

absl::StatusOr<std::string> CheckpointSigner::Sign(int64_t sequence, absl::string_view head_hash) const {
  std::string message = CheckpointMessage(sequence, head_hash);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t len = sizeof(sig);
  bool ok = EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("Ed25519 signing failed");
  return std::string(reinterpret_cast<const char*>(sig), len);
}

bool CheckpointSigner::Verify(int64_t sequence, absl::string_view head_hash, absl::string_view signature) const {
  return VerifyCheckpointSignature(key_, sequence, head_hash, signature);
}

}  // namespace ferry::audit
