#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <string>

// What every libcurl client of Ferry needs the same way (the OIDC JWKS
// fetch, the Vault client): one global init, owners for libcurl's handles,
// a response body with a size limit, and what counts as a loopback host
// (where plain http may be allowed).
namespace ferry::http {

// curl_global_init, once per process, before the first handle.
void InitCurlOnce();

// "localhost", 127.0.0.0/8 or [::1] (case-insensitive).
bool IsLoopbackHost(std::string host);

struct CurlUrlRelease {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlRelease {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlFree {
  void operator()(char* s) const { curl_free(s); }
};
struct SlistRelease {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// A response body of at most `cap` bytes: AppendBounded (the
// CURLOPT_WRITEFUNCTION, with the body as CURLOPT_WRITEDATA) aborts the
// transfer and sets too_big when the body would grow past it.
struct BoundedBody {
  std::string data;
  size_t cap = 0;
  bool too_big = false;
};
size_t AppendBounded(char* ptr, size_t size, size_t count, void* body);

}  // namespace ferry::http
