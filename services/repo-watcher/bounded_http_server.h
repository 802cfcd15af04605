#pragma once

#include <cstddef>
#include <memory>

#include <openssl/types.h>

#include "absl/time/time.h"

namespace httplib {
class Server;
}

namespace ferry::repo_watcher {

struct HttpLimits {
  size_t max_body_bytes = 1 << 20;         // --webhook-max-body-bytes
  size_t max_head_bytes = 64 << 10;        // --webhook-max-header-bytes: request line and headers
  absl::Duration request_timeout = absl::Seconds(30);  // --webhook-request-timeout: a whole request
  absl::Duration io_timeout = absl::Seconds(5);        // one read or write
  size_t workers = 8;                      // requests served at once
  size_t max_pending = 64;                 // --webhook-max-pending-connections: accepted, waiting for a worker
};

// cpp-httplib's server with the bounds its version 0.11 lacks: it buffers a
// header line of any length before checking it against 8 KiB, takes any
// number of header lines, keeps a slow sender as long as each byte comes
// within the read timeout, and queues accepted connections without limit.
// The server made here serves one request per connection (Connection:
// close); a connection may send at most max_head_bytes + max_body_bytes in
// at most request_timeout, past either it is closed (after a 400 when
// httplib can still answer). Connections past `workers` busy and
// `max_pending` waiting are answered 503 and closed at once. Register
// handlers as with any httplib::Server.
//
// With `tls` (an OpenSSL server context holding the certificate and key),
// every connection is TLS: the handshake is made on the worker, non-blocking,
// within io_timeout per step and request_timeout in all, and the same bounds
// then apply to the decrypted request. Connections past the queue are closed
// without an answer (a 503 would need a handshake first). cpp-httplib's own
// SSLServer is not used: its connections would escape these bounds.
std::unique_ptr<httplib::Server> NewBoundedHttpServer(HttpLimits limits, std::shared_ptr<SSL_CTX> tls = nullptr);

}  // namespace ferry::repo_watcher
