#include "common/http/curl_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <mutex>

#include "absl/strings/ascii.h"

namespace ferry::http {

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool IsLoopbackHost(std::string host) {
  host = absl::AsciiStrToLower(host);
  if (host == "localhost" || host == "[::1]" || host == "::1") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return false;
}

size_t AppendBounded(char* ptr, size_t size, size_t count, void* user) {
  auto* body = static_cast<BoundedBody*>(user);
  const size_t n = size * count;
  if (body->data.size() + n > body->cap) {
    body->too_big = true;
    return 0;  // aborts the transfer
  }
  body->data.append(ptr, n);
  return n;
}

}  // namespace ferry::http
