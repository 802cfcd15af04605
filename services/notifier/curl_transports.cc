#include "services/notifier/curl_transports.h"

#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/http/curl_support.h"

namespace ferry::notifier {
namespace {

// scheme://host[:port], for messages (never the path: a Slack URL's secret).
std::string HostPart(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return "(not a URL)";
  return url.substr(0, url.find_first_of("/?#", scheme + 3));
}

std::string HostOnly(const std::string& url) {
  std::string h = HostPart(url);
  h = h.substr(h.find("://") + 3);
  if (!h.empty() && h[0] == '[') return h.substr(0, h.find(']') + 1);
  return h.substr(0, h.find(':'));
}

struct Upload {
  const std::string* data;
  size_t offset = 0;
};

size_t ReadUpload(char* buffer, size_t size, size_t count, void* user) {
  auto* up = static_cast<Upload*>(user);
  size_t n = std::min(size * count, up->data->size() - up->offset);
  std::memcpy(buffer, up->data->data() + up->offset, n);
  up->offset += n;
  return n;
}

}  // namespace

CurlHttpTransport::CurlHttpTransport(absl::Duration timeout) : timeout_(timeout) { http::InitCurlOnce(); }

absl::StatusOr<HttpResponse> CurlHttpTransport::Post(const std::string& url,
                                                     const std::vector<std::pair<std::string, std::string>>& headers,
                                                     const std::string& body) {
  std::unique_ptr<CURL, http::CurlRelease> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  curl_slist* list = nullptr;
  for (const auto& [name, value] : headers) list = curl_slist_append(list, absl::StrCat(name, ": ", value).c_str());
  list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, http::SlistRelease> header_list(list);
  http::BoundedBody response;
  response.cap = 8192;
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list.get());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, http::AppendBounded);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && response.too_big && status != 0)) {
    return absl::UnavailableError(absl::StrCat("POST to ", HostPart(url), ": ", curl_easy_strerror(rc)));
  }
  return HttpResponse{static_cast<int>(status), std::move(response.data)};
}

CurlMailTransport::CurlMailTransport(absl::Duration timeout) : timeout_(timeout) { http::InitCurlOnce(); }

absl::Status CurlMailTransport::Send(const MailMessage& mail) {
  std::unique_ptr<CURL, http::CurlRelease> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  CURL* c = curl.get();
  const bool smtps = absl::StartsWith(mail.smtp_url, "smtps://");
  curl_easy_setopt(c, CURLOPT_URL, mail.smtp_url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  if (!smtps) {
    // STARTTLS is required, except to a loopback server (a local relay).
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     http::IsLoopbackHost(HostOnly(mail.smtp_url)) ? static_cast<long>(CURLUSESSL_TRY)
                                                                   : static_cast<long>(CURLUSESSL_ALL));
  }
  if (!mail.username.empty()) {
    curl_easy_setopt(c, CURLOPT_USERNAME, mail.username.c_str());
    curl_easy_setopt(c, CURLOPT_PASSWORD, mail.password.c_str());
  }
  const std::string from = "<" + mail.from + ">";
  curl_easy_setopt(c, CURLOPT_MAIL_FROM, from.c_str());
  curl_slist* rcpt = nullptr;
  for (const std::string& to : mail.to) rcpt = curl_slist_append(rcpt, ("<" + to + ">").c_str());
  std::unique_ptr<curl_slist, http::SlistRelease> rcpt_list(rcpt);
  curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt_list.get());
  Upload upload{&mail.message};
  curl_easy_setopt(c, CURLOPT_READFUNCTION, ReadUpload);
  curl_easy_setopt(c, CURLOPT_READDATA, &upload);
  curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) return absl::OkStatus();
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  std::string msg = absl::StrCat("SMTP to ", HostPart(mail.smtp_url), ": ", curl_easy_strerror(rc),
                                 code != 0 ? absl::StrCat(" (reply ", code, ")") : "");
  // 5xx replies are permanent (RFC 5321); anything else may pass.
  if (code >= 500 && code < 600) return absl::FailedPreconditionError(msg);
  return absl::UnavailableError(msg);
}

}  // namespace ferry::notifier
