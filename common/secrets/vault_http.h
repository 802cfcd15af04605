#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ferry::secrets {

// One answer of a Vault server: its HTTP status and body (JSON).
struct VaultResponse {
  int status = 0;
  std::string body;
};

// The seam between VaultKvClient and the network: one request to the Vault
// server the implementation was made for, one answer. CurlVaultHttp is the
// real one; unit tests fake it.
//
// Contract: `api_path` starts with "/v1/" and is already percent-encoded;
// `token`, when not empty, goes in the X-Vault-Token header; `body`, when not
// empty, is sent as JSON. Every HTTP status is an answer (a 404 or a 503 is
// a VaultResponse, not an error). Errors: UNAVAILABLE when no answer came
// (connection refused, TLS verification failed, timeout), RESOURCE_EXHAUSTED
// when the answer is larger than the implementation's limit. Messages never
// hold the token, the body sent or the body received. Thread-safe.
class VaultHttp {
 public:
  virtual ~VaultHttp() = default;
  virtual absl::StatusOr<VaultResponse> Send(const std::string& method, const std::string& api_path,
                                             const std::string& token, const std::string& body) = 0;
};

}  // namespace ferry::secrets
