#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"
#include "services/notifier/transports.h"

namespace ferry::notifier {

// Reads a secret reference (SecretSources::Read in main.cc).
using SecretReader = std::function<absl::StatusOr<std::string>(const v1::SecretRef& ref, const std::string& field)>;

// Carries out one delivery request (the JSON document NotificationBuilder
// made): reads its secrets, signs a webhook body (X-Ferry-Signature:
// sha256=<hex HMAC-SHA256 of the body under hmac_secret>), sets a Git
// host's token header, and sends through the transport.
// OK when the receiver took it (2xx; SMTP accepted); FAILED_PRECONDITION
// when retrying cannot help (a 4xx other than 408/409/425/429, a bad
// secret reference, plain http:// to a host that is not loopback);
// UNAVAILABLE otherwise (retry). Messages never hold a secret or a URL's
// path. Thread-safe when its transports are.
class DeliverySender {
 public:
  // `declared_secrets` reads the references of subscriptions declared by
  // applications (a request with "secrets": "declared"); null: refused.
  DeliverySender(HttpTransport& http, MailTransport& mail, SecretReader secrets,
                 SecretReader declared_secrets = nullptr)
      : http_(http), mail_(mail), secrets_(std::move(secrets)), declared_secrets_(std::move(declared_secrets)) {}

  absl::Status Send(const std::string& request_json);

  // The "kind" of a request, for metrics ("webhook", ..., "commit_status").
  static std::string KindOf(const std::string& request_json);

 private:
  HttpTransport& http_;
  MailTransport& mail_;
  SecretReader secrets_;
  SecretReader declared_secrets_;
};

// Lowercase hex HMAC-SHA256 of `body` under `key`.
std::string HmacSha256Hex(const std::string& key, const std::string& body);

}  // namespace ferry::notifier
