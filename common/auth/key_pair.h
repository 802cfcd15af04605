#pragma once

#include <string>

#include <openssl/types.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// PEM files of TLS, read and checked with OpenSSL so that a wrong file stops
// a service at start with an error naming the flag and the file, instead of
// every handshake failing later. No gRPC: the webhook and metrics listeners
// use it too.
namespace ferry::auth {

// One PEM file, as a flag named it.
struct PemFile {
  std::string flag;  // "--tls-cert-file", for errors
  std::string path;
  std::string pem;   // the file's content
};

// Reads `path` whole. NOT_FOUND "<flag> <path>: no such file";
// INVALID_ARGUMENT when it cannot be read or is empty.
absl::StatusOr<PemFile> ReadPemFile(const std::string& flag, const std::string& path);

// INVALID_ARGUMENT "<flag> <path>: holds no PEM certificate" unless `file`
// holds at least one certificate (every block must parse).
absl::Status CheckCertificates(const PemFile& file);

// A certificate (with any intermediates after it) and its private key.
class KeyPair {
 public:
  // Reads both files and checks that the first holds certificates, the
  // second a private key, and that the key is the certificate's (errors name
  // the flags and files).
  static absl::StatusOr<KeyPair> Load(const std::string& cert_flag, const std::string& cert_path,
                                      const std::string& key_flag, const std::string& key_path);

  const PemFile& cert() const { return cert_; }
  const PemFile& key() const { return key_; }

  // OK when the certificate chains to a certificate of `ca` and is valid
  // now; else INVALID_ARGUMENT "<cert flag> <path>: not signed by the CA in
  // <ca flag> <path> (<OpenSSL's reason>)", or "not accepted by the CA in"
  // for other reasons (expired, not yet valid, not a CA).
  absl::Status CheckIssuedBy(const PemFile& ca) const;

  // Installs the certificate chain and the key in an OpenSSL context (a
  // server's).
  absl::Status UseIn(SSL_CTX* ctx) const;

 private:
  PemFile cert_;
  PemFile key_;
};

}  // namespace ferry::auth
