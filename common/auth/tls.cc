#include "common/auth/tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/auth/key_pair.h"

namespace ferry::auth {
namespace {

constexpr char kSpiffePrefix[] = "spiffe://ferry/";

// A service name as the suite's certificates carry it: lowercase letters,
// digits and dashes.
bool IsServiceName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace

std::shared_ptr<const Tls> Tls::Plaintext() { return std::make_shared<const Tls>(); }

absl::StatusOr<std::shared_ptr<const Tls>> Tls::Load(const TlsOptions& options) {
  if (options.plaintext) return Plaintext();
  auto tls = std::make_shared<Tls>();
  absl::StatusOr<PemFile> ca = ReadPemFile("--tls-ca-file", options.ca_file);
  if (!ca.ok()) return ca.status();
  if (absl::Status s = CheckCertificates(*ca); !s.ok()) return s;
  absl::StatusOr<KeyPair> pair = KeyPair::Load("--tls-cert-file", options.cert_file, "--tls-key-file",
                                               options.key_file);
  if (!pair.ok()) return pair.status();
  if (absl::Status s = pair->CheckIssuedBy(*ca); !s.ok()) return s;
  tls->plaintext_ = false;
  tls->ca_pem_ = ca->pem;
  tls->cert_pem_ = pair->cert().pem;
  tls->key_pem_ = pair->key().pem;
  return std::shared_ptr<const Tls>(std::move(tls));
}

std::shared_ptr<grpc::ServerCredentials> Tls::ServerCredentials() const {
  if (plaintext_) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

std::shared_ptr<grpc::Channel> Tls::Channel(const std::string& address, const std::string& peer_service,
                                            grpc::ChannelArguments args) const {
  if (plaintext_) return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ca_pem_;
  options.pem_private_key = key_pem_;
  options.pem_cert_chain = cert_pem_;
  // Whatever address is dialled, only the certificate of ferry-<peer> from
  // the suite's CA is accepted.
  args.SetSslTargetNameOverride(absl::StrCat("ferry-", peer_service));
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(options), args);
}

std::string PeerServiceOf(const grpc::AuthContext& context) {
  // Only a TLS peer whose certificate the handshake verified: the server
  // asks for client certificates with GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY,
  // so a certificate that is present has been checked against the CA.
  if (!context.IsPeerAuthenticated()) return "";
  std::vector<grpc::string_ref> type = context.FindPropertyValues(GRPC_TRANSPORT_SECURITY_TYPE_PROPERTY_NAME);
  if (type.empty() || type.front() != GRPC_SSL_TRANSPORT_SECURITY_TYPE) return "";
  std::string found;
  for (const grpc::string_ref& uri : context.FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    std::string value(uri.data(), uri.size());
    if (!absl::StartsWith(value, kSpiffePrefix)) continue;
    std::string service = value.substr(sizeof kSpiffePrefix - 1);
    if (!IsServiceName(service)) continue;
    if (!found.empty() && found != service) return "";  // names two services: neither
    found = service;
  }
  return found;
}

std::string PeerServiceOf(const grpc::ServerContext& context) {
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  return auth == nullptr ? "" : PeerServiceOf(*auth);
}

}  // namespace ferry::auth
