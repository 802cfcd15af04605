#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"

// TLS for every gRPC port of the suite, mutual between services. Each service
// has a certificate from the suite's CA whose SANs are a URI naming it
// (spiffe://ferry/<service>), a DNS name ferry-<service>, and the names users
// reach it by (localhost, 127.0.0.1, the chart's service names).
// scripts/ferry-certs makes the CA and the certificates.
namespace ferry::auth {

struct TlsOptions {
  std::string ca_file;    // PEM: the CA that signs the suite's certificates
  std::string cert_file;  // PEM: this service's certificate (server and client)
  std::string key_file;   // PEM: its private key
  // --insecure-plaintext: no TLS at all. For development only; logged as a
  // warning at start and shown by the service's "serving" line.
  bool plaintext = false;
};

// Reads the three files once (NOT_FOUND / INVALID_ARGUMENT naming the flag
// and the file); with plaintext, checks nothing.
class Tls {
 public:
  static absl::StatusOr<std::shared_ptr<const Tls>> Load(const TlsOptions& options);
  // No TLS at all (--insecure-plaintext; tests).
  static std::shared_ptr<const Tls> Plaintext();

  // Server credentials: TLS with this service's certificate; client
  // certificates are requested and, when sent, verified against the CA (people
  // authenticate with bearer tokens and send none). Insecure when plaintext.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;

  // A channel to the Ferry service `peer_service` ("planner") at `address`,
  // presenting this service's certificate and accepting only a server
  // certificate for ferry-<peer_service> from the suite's CA.
  std::shared_ptr<grpc::Channel> Channel(const std::string& address, const std::string& peer_service,
                                         grpc::ChannelArguments args = {}) const;

  bool plaintext() const { return plaintext_; }

 private:
  bool plaintext_ = true;
  std::string ca_pem_, cert_pem_, key_pem_;
};

// The Ferry service a verified peer certificate names (its
// spiffe://ferry/<service> URI SAN), or "" when the peer sent no certificate
// or it names none.
// Read from gRPC's auth context: the "peer_uri" properties of a peer that
// completed a TLS handshake with a certificate (transport_security_type
// "ssl"); a certificate naming two different Ferry services names none.
std::string PeerServiceOf(const grpc::AuthContext& context);
// The same for a call; "" when the context has no call (a test's).
std::string PeerServiceOf(const grpc::ServerContext& context);

}  // namespace ferry::auth
