#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ferry::notifier {

struct HttpResponse {
  int status = 0;
  std::string body;  // at most a few KiB, for error messages
};

// Sends an HTTP POST (the seam to the network; CurlHttpTransport).
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // The response whatever its status; UNAVAILABLE when none came (refused,
  // timed out, TLS failure), naming the host, never the URL's path or query
  // (a Slack URL's secret).
  virtual absl::StatusOr<HttpResponse> Post(const std::string& url,
                                            const std::vector<std::pair<std::string, std::string>>& headers,
                                            const std::string& body) = 0;
};

struct MailMessage {
  std::string smtp_url;  // smtp://host:port or smtps://host:port
  std::string username;  // empty: no login
  std::string password;
  std::string from;
  std::vector<std::string> to;
  std::string message;  // RFC 5322, CRLF line ends
};

// Sends one e-mail over SMTP (the seam; CurlMailTransport).
class MailTransport {
 public:
  virtual ~MailTransport() = default;
  // OK when the server accepted it; UNAVAILABLE (or the server's refusal as
  // FAILED_PRECONDITION) otherwise, never with the password.
  virtual absl::Status Send(const MailMessage& mail) = 0;
};

}  // namespace ferry::notifier
