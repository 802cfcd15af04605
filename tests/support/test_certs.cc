#include "tests/support/test_certs.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::testing {
namespace {

void MakeCerts(const std::string& dir) {
  CommandResult r = RunCommand({"bash", std::string(FERRY_TEST_SOURCE_DIR) + "/scripts/ferry-certs", dir});
  if (r.exit_code != 0) {
    std::fprintf(stderr, "scripts/ferry-certs %s failed (exit %d):\n%s\n", dir.c_str(), r.exit_code,
                 r.output.c_str());
    std::abort();
  }
}

}  // namespace

std::string ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const TestCerts& TestCerts::Get() {
  static const TestCerts* certs = [] {
    auto* c = new TestCerts();
    std::string root = MakeTempDir("ferry-certs");
    c->dir_ = root + "/suite";
    c->other_dir_ = root + "/other";
    MakeCerts(c->dir_);
    MakeCerts(c->other_dir_);
    return c;
  }();
  return *certs;
}

std::vector<std::string> TestCerts::Flags(const std::string& service) const {
  return {"--tls-ca-file=" + ca(), "--tls-cert-file=" + cert(service), "--tls-key-file=" + key(service)};
}

std::shared_ptr<grpc::ChannelCredentials> TestCerts::UserCredentials() const {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadTextFile(ca());
  return grpc::SslCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> TestCerts::ServiceCredentials(const std::string& service) const {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = ReadTextFile(ca());
  options.pem_cert_chain = ReadTextFile(cert(service));
  options.pem_private_key = ReadTextFile(key(service));
  return grpc::SslCredentials(options);
}

}  // namespace ferry::testing
