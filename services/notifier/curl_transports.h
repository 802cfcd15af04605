#pragma once

#include "absl/time/time.h"
#include "services/notifier/transports.h"

namespace ferry::notifier {

// HttpTransport over libcurl: no redirects followed, http and https only,
// a timeout, at most 8 KiB of the response body kept. Thread-safe (a handle
// per call).
class CurlHttpTransport final : public HttpTransport {
 public:
  explicit CurlHttpTransport(absl::Duration timeout = absl::Seconds(30));
  absl::StatusOr<HttpResponse> Post(const std::string& url,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const std::string& body) override;

 private:
  const absl::Duration timeout_;
};

// MailTransport over libcurl's smtp:// and smtps://: smtps is TLS from the
// start; smtp requires STARTTLS unless the server is a loopback host.
// Thread-safe.
class CurlMailTransport final : public MailTransport {
 public:
  explicit CurlMailTransport(absl::Duration timeout = absl::Seconds(30));
  absl::Status Send(const MailMessage& mail) override;

 private:
  const absl::Duration timeout_;
};

}  // namespace ferry::notifier
