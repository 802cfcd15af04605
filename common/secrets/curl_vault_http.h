#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/secrets/vault_http.h"

namespace ferry::secrets {

struct CurlVaultHttpOptions {
  // The server's base address, "https://vault.example:8200": a scheme and
  // an authority, no path, query or user information.
  std::string address = "";
  // PEM file of the CAs that may sign the server's certificate; empty: the
  // system's CA store. TLS verification (chain and host name) is always on.
  std::string ca_file = "";
  // Vault Enterprise namespace (X-Vault-Namespace); empty: none.
  std::string vault_namespace = "";
  // TESTS ONLY: an http:// address is accepted when its host is loopback
  // (127.0.0.0/8, [::1], localhost), for a Vault dev server. Otherwise only
  // https:// is.
  bool test_only_allow_http_to_loopback = false;
  // Whole request (connect, TLS, answer).
  absl::Duration timeout = absl::Seconds(10);
  // Largest answer read; a larger one is RESOURCE_EXHAUSTED.
  size_t max_response_bytes = 1 << 20;
};

// VaultHttp over libcurl: one connection per request, no redirects, no
// proxy for a loopback address.
class CurlVaultHttp final : public VaultHttp {
 public:
  // INVALID_ARGUMENT naming --vault-address for an address that is not
  // https:// (or loopback http:// with the test-only option) or has a path;
  // --vault-ca-file when that file cannot be read.
  static absl::StatusOr<std::unique_ptr<CurlVaultHttp>> Create(CurlVaultHttpOptions options);

  absl::StatusOr<VaultResponse> Send(const std::string& method, const std::string& api_path, const std::string& token,
                                     const std::string& body) override;

 private:
  CurlVaultHttp(CurlVaultHttpOptions options, std::string base, bool loopback_http)
      : options_(std::move(options)), base_(std::move(base)), loopback_http_(loopback_http) {}

  const CurlVaultHttpOptions options_;
  const std::string base_;  // scheme://authority, no trailing slash
  const bool loopback_http_;
};

}  // namespace ferry::secrets
