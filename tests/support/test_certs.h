#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

// Certificates for tests of TLS, made once per test binary by the project's
// own scripts/ferry-certs (so the tests check the certificates `make up`
// makes): the suite's CA with a certificate per service, and a second,
// unrelated CA with the same service names, for "a peer from another CA".
namespace ferry::testing {

class TestCerts {
 public:
  // The certificates, made on first use in a temporary folder; aborts the
  // test binary (printing ferry-certs' output) when they cannot be made.
  static const TestCerts& Get();

  // The suite's CA and the certificate and key of `service` ("planner").
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string cert(const std::string& service) const { return dir_ + "/" + service + ".pem"; }
  std::string key(const std::string& service) const { return dir_ + "/" + service + "-key.pem"; }
  const std::string& dir() const { return dir_; }

  // The same from the other CA: certificates no Ferry service trusts.
  std::string other_ca() const { return other_dir_ + "/ca.pem"; }
  std::string other_cert(const std::string& service) const { return other_dir_ + "/" + service + ".pem"; }
  std::string other_key(const std::string& service) const { return other_dir_ + "/" + service + "-key.pem"; }

  // --tls-ca-file, --tls-cert-file and --tls-key-file for `service`.
  std::vector<std::string> Flags(const std::string& service) const;

  // Client credentials as a person's tool has them: the suite's CA, no
  // client certificate.
  std::shared_ptr<grpc::ChannelCredentials> UserCredentials() const;
  // Client credentials of `service` (its certificate and key, the suite's CA).
  std::shared_ptr<grpc::ChannelCredentials> ServiceCredentials(const std::string& service) const;

 private:
  TestCerts() = default;
  std::string dir_;
  std::string other_dir_;
};

// A file's content ("" when it cannot be read).
std::string ReadTextFile(const std::string& path);

}  // namespace ferry::testing
