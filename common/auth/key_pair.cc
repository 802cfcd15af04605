#include "common/auth/key_pair.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "absl/strings/str_cat.h"

namespace ferry::auth {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

std::string Named(const PemFile& f) { return absl::StrCat(f.flag, " ", f.path); }

// Never prompts for a pass phrase (OpenSSL's default reads the terminal).
int NoPassphrase(char*, int, int, void*) { return 0; }

std::unique_ptr<BIO, BioFree> MemBio(const std::string& s) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

// Every certificate of a PEM text, in order; empty when one does not parse.
std::vector<X509Ptr> ParseCertificates(const std::string& pem) {
  std::vector<X509Ptr> out;
  auto bio = MemBio(pem);
  ERR_clear_error();
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)) out.emplace_back(x);
  unsigned long err = ERR_peek_last_error();
  bool clean_end = ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!clean_end) out.clear();
  return out;
}

std::string OpenSslError() {
  unsigned long err = ERR_get_error();
  ERR_clear_error();
  if (err == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(err, buf, sizeof buf);
  return buf;
}

}  // namespace

absl::StatusOr<PemFile> ReadPemFile(const std::string& flag, const std::string& path) {
  PemFile file{.flag = flag, .path = path, .pem = ""};
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(flag, " is empty"));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    if (e == ENOENT) return absl::NotFoundError(absl::StrCat(Named(file), ": no such file"));
    return absl::InvalidArgumentError(absl::StrCat(Named(file), ": cannot be read: ", std::strerror(e)));
  }
  if (S_ISDIR(st.st_mode)) return absl::InvalidArgumentError(absl::StrCat(Named(file), ": is a directory"));
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(Named(file), ": cannot be read: ", std::strerror(errno)));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  file.pem = ss.str();
  if (file.pem.empty()) return absl::InvalidArgumentError(absl::StrCat(Named(file), ": is empty"));
  return file;
}

absl::Status CheckCertificates(const PemFile& file) {
  if (ParseCertificates(file.pem).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(Named(file), ": holds no PEM certificate"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyPair> KeyPair::Load(const std::string& cert_flag, const std::string& cert_path,
                                      const std::string& key_flag, const std::string& key_path) {
  KeyPair pair;
  absl::StatusOr<PemFile> cert = ReadPemFile(cert_flag, cert_path);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<PemFile> key = ReadPemFile(key_flag, key_path);
  if (!key.ok()) return key.status();
  pair.cert_ = std::move(*cert);
  pair.key_ = std::move(*key);
  std::vector<X509Ptr> certs = ParseCertificates(pair.cert_.pem);
  if (certs.empty()) return absl::InvalidArgumentError(absl::StrCat(Named(pair.cert_), ": holds no PEM certificate"));
  auto bio = MemBio(pair.key_.pem);
  ERR_clear_error();
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  ERR_clear_error();
  if (pkey == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(Named(pair.key_), ": holds no PEM private key (or one protected by a pass phrase)"));
  }
  if (X509_check_private_key(certs.front().get(), pkey.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat(Named(pair.key_), ": is not the key of the certificate in ", Named(pair.cert_)));
  }
  return pair;
}

absl::Status KeyPair::CheckIssuedBy(const PemFile& ca) const {
  std::vector<X509Ptr> roots = ParseCertificates(ca.pem);
  if (roots.empty()) return absl::InvalidArgumentError(absl::StrCat(Named(ca), ": holds no PEM certificate"));
  std::vector<X509Ptr> chain = ParseCertificates(cert_.pem);
  if (chain.empty()) return absl::InvalidArgumentError(absl::StrCat(Named(cert_), ": holds no PEM certificate"));
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  for (const X509Ptr& root : roots) X509_STORE_add_cert(store.get(), root.get());
  std::unique_ptr<STACK_OF(X509), StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (X509_STORE_CTX_init(ctx.get(), store.get(), chain.front().get(), untrusted.get()) != 1) {
    return absl::InternalError(absl::StrCat("cannot check ", Named(cert_), ": ", OpenSslError()));
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int error = X509_STORE_CTX_get_error(ctx.get());
    std::string reason = X509_verify_cert_error_string(error);
    ERR_clear_error();
    bool other_issuer = error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                        error == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                        error == X509_V_ERR_CERT_SIGNATURE_FAILURE || error == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
                        error == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN;
    return absl::InvalidArgumentError(absl::StrCat(Named(cert_),
                                                   other_issuer ? ": not signed by the CA in " : ": not accepted by the CA in ",
                                                   Named(ca), " (", reason, ")"));
  }
  return absl::OkStatus();
}

absl::Status KeyPair::UseIn(SSL_CTX* ctx) const {
  std::vector<X509Ptr> chain = ParseCertificates(cert_.pem);
  if (chain.empty()) return absl::InvalidArgumentError(absl::StrCat(Named(cert_), ": holds no PEM certificate"));
  auto bio = MemBio(key_.pem);
  ERR_clear_error();
  std::unique_ptr<EVP_PKEY, KeyFree> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (pkey == nullptr) return absl::InvalidArgumentError(absl::StrCat(Named(key_), ": holds no PEM private key"));
  if (SSL_CTX_use_certificate(ctx, chain.front().get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(Named(cert_), ": ", OpenSslError()));
  }
  for (size_t i = 1; i < chain.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, chain[i].get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(Named(cert_), ": ", OpenSslError()));
    }
  }
  if (SSL_CTX_use_PrivateKey(ctx, pkey.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(Named(key_), ": ", OpenSslError()));
  }
  return absl::OkStatus();
}

}  // namespace ferry::auth
