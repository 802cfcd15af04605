#include "common/secrets/curl_vault_http.h"

#include <curl/curl.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/http/curl_support.h"

namespace ferry::secrets {
namespace {

using http::CurlFree;
using http::CurlRelease;
using http::CurlUrlRelease;
using http::InitCurlOnce;
using http::IsLoopbackHost;
using http::SlistRelease;

std::string Part(CURLU* u, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(u, part, &raw, 0) != CURLUE_OK || raw == nullptr) return "";
  std::unique_ptr<char, CurlFree> owned(raw);
  return owned.get();
}

absl::Status BadAddress(const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat("--vault-address: ", why));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CurlVaultHttp>> CurlVaultHttp::Create(CurlVaultHttpOptions options) {
  InitCurlOnce();
  std::unique_ptr<CURLU, CurlUrlRelease> u(curl_url());
  if (!u) return absl::ResourceExhaustedError("out of memory");
  if (options.address.empty()) return BadAddress("is required");
  if (curl_url_set(u.get(), CURLUPART_URL, options.address.c_str(), 0) != CURLUE_OK) {
    return BadAddress("is not a URL (expected https://host[:port])");
  }
  const std::string scheme = absl::AsciiStrToLower(Part(u.get(), CURLUPART_SCHEME));
  const std::string host = Part(u.get(), CURLUPART_HOST);
  const std::string port = Part(u.get(), CURLUPART_PORT);
  const std::string path = Part(u.get(), CURLUPART_PATH);
  if (!Part(u.get(), CURLUPART_USER).empty() || !Part(u.get(), CURLUPART_QUERY).empty() ||
      !Part(u.get(), CURLUPART_FRAGMENT).empty() || (!path.empty() && path != "/")) {
    return BadAddress("must be scheme://host[:port] only (no user, path, query or fragment)");
  }
  if (host.empty()) return BadAddress("has no host");
  bool loopback_http = false;
  if (scheme == "http") {
    if (!options.test_only_allow_http_to_loopback || !IsLoopbackHost(host)) {
      return BadAddress("must be https:// (a token is never sent over plain HTTP)");
    }
    loopback_http = true;
  } else if (scheme != "https") {
    return BadAddress("must be https://");
  }
  if (!options.ca_file.empty()) {
    std::ifstream in(options.ca_file);
    if (!in) return absl::InvalidArgumentError(absl::StrCat("--vault-ca-file: cannot read \"", options.ca_file, "\""));
  }
  std::string base = absl::StrCat(scheme, "://", host.find(':') != std::string::npos && host[0] != '[' ? "[" : "",
                                   host, host.find(':') != std::string::npos && host[0] != '[' ? "]" : "");
  if (!port.empty()) absl::StrAppend(&base, ":", port);
  return std::unique_ptr<CurlVaultHttp>(new CurlVaultHttp(std::move(options), std::move(base), loopback_http));
}

absl::StatusOr<VaultResponse> CurlVaultHttp::Send(const std::string& method, const std::string& api_path,
                                                  const std::string& token, const std::string& body) {
  std::unique_ptr<CURL, CurlRelease> curl(curl_easy_init());
  if (!curl) return absl::ResourceExhaustedError("vault: cannot start libcurl");
  CURL* c = curl.get();
  const std::string url = base_ + api_path;
  http::BoundedBody answer;
  answer.cap = options_.max_response_bytes;
  char error[CURL_ERROR_SIZE] = {0};
  const long timeout_ms = static_cast<long>(absl::ToInt64Milliseconds(options_.timeout));

  std::unique_ptr<curl_slist, SlistRelease> headers;
  auto add_header = [&headers](const std::string& h) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next != nullptr) {
      (void)headers.release();
      headers.reset(next);
    }
    return next != nullptr;
  };
  bool headers_ok = add_header("X-Vault-Request: true") && add_header("Accept: application/json");
  if (!token.empty()) headers_ok = headers_ok && add_header("X-Vault-Token: " + token);
  if (!options_.vault_namespace.empty()) headers_ok = headers_ok && add_header("X-Vault-Namespace: " + options_.vault_namespace);
  if (!body.empty()) headers_ok = headers_ok && add_header("Content-Type: application/json");
  if (!headers_ok) return absl::ResourceExhaustedError("vault: out of memory");

  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, loopback_http_ ? "http" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_response_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &http::AppendBounded);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "ferry-vault-client");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  if (loopback_http_) curl_easy_setopt(c, CURLOPT_PROXY, "");  // never through a proxy from the environment
  if (method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    return absl::InvalidArgumentError(absl::StrCat("vault: unsupported method ", method));
  }
  const CURLcode rc = curl_easy_perform(c);
  if (answer.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    return absl::ResourceExhaustedError(
        absl::StrCat("vault: the answer to ", method, " ", api_path, " is larger than ", options_.max_response_bytes,
                     " bytes"));
  }
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat("vault: ", method, " ", base_, api_path, ": ",
                                               error[0] != '\0' ? error : curl_easy_strerror(rc)));
  }
  long code = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  return VaultResponse{.status = static_cast<int>(code), .body = std::move(answer.data)};
}

}  // namespace ferry::secrets
