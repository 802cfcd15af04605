#include "services/deployer/kubernetes/kube_credentials.h"

#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::kubernetes {
namespace {

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

constexpr char kCa[] = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
constexpr char kCert[] = "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n";
constexpr char kKey[] = "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n";

std::string Config(const std::string& cluster_extra, const std::string& user) {
  return absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: one
contexts:
- name: one
  context: {cluster: c1, user: u1, namespace: team-a}
- name: two
  context: {cluster: c2, user: u2}
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: )", absl::Base64Escape(kCa), "\n", cluster_extra, R"(
- name: c2
  cluster:
    server: https://10.0.0.1:443
    certificate-authority: ca.pem
users:
- name: u1
  user:
)", user, R"(
- name: u2
  user:
    tokenFile: token.txt
)");
}

TEST(KubeCredentialsTest, ReadsCurrentContextWithEmbeddedData) {
  std::string dir = testing::MakeTempDir("kubeconfig");
  Write(dir + "/config", Config("", absl::StrCat("    client-certificate-data: ", absl::Base64Escape(kCert),
                                                 "\n    client-key-data: ", absl::Base64Escape(kKey))));
  absl::StatusOr<KubeCredentials> c = LoadKubeconfig(dir + "/config", "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://127.0.0.1:6443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->client_cert_pem, kCert);
  EXPECT_EQ(c->client_key_pem, kKey);
  EXPECT_EQ(c->default_namespace, "team-a");
  EXPECT_NE(c->description.find("context one"), std::string::npos);
}

TEST(KubeCredentialsTest, ReadsNamedContextWithFilesRelativeToTheKubeconfig) {
  std::string dir = testing::MakeTempDir("kubeconfig");
  Write(dir + "/ca.pem", kCa);
  Write(dir + "/config", Config("", "    token: abc"));
  absl::StatusOr<KubeCredentials> c = LoadKubeconfig(dir + "/config", "two");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.0.0.1:443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->token_file, dir + "/token.txt");
  EXPECT_TRUE(c->default_namespace.empty());
  absl::StatusOr<KubeCredentials> one = LoadKubeconfig(dir + "/config", "one");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->token, "abc");
}

TEST(KubeCredentialsTest, RefusesWhatItCannotUseSafely) {
  std::string dir = testing::MakeTempDir("kubeconfig");
  Write(dir + "/config", Config("    insecure-skip-tls-verify: true", "    token: abc"));
  absl::StatusOr<KubeCredentials> c = LoadKubeconfig(dir + "/config", "one");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("insecure-skip-tls-verify"), std::string::npos) << c.status();

  Write(dir + "/config", Config("", "    exec: {command: aws}"));
  c = LoadKubeconfig(dir + "/config", "one");
  EXPECT_NE(c.status().message().find("exec and auth-provider"), std::string::npos) << c.status();

  Write(dir + "/config", Config("", "    token: abc"));
  c = LoadKubeconfig(dir + "/config", "three");
  EXPECT_NE(c.status().message().find("no context \"three\""), std::string::npos) << c.status();

  Write(dir + "/config", "clusters: []\ncontexts:\n- name: x\n  context: {cluster: c}\n");
  c = LoadKubeconfig(dir + "/config", "x");
  EXPECT_NE(c.status().message().find("names cluster \"c\""), std::string::npos) << c.status();

  Write(dir + "/config", "current-context: x\ncontexts:\n- name: x\n  context: {cluster: c}\nclusters:\n- name: c\n"
                         "  cluster: {server: 'http://127.0.0.1:8080'}\n");
  c = LoadKubeconfig(dir + "/config", "");
  EXPECT_NE(c.status().message().find("must be an https:// URL"), std::string::npos) << c.status();

  Write(dir + "/config", "current-context: [unclosed");
  EXPECT_EQ(LoadKubeconfig(dir + "/config", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadKubeconfig(dir + "/missing", "").status().code(), absl::StatusCode::kNotFound);
}

TEST(KubeCredentialsTest, InClusterReadsTheServiceAccount) {
  std::string dir = testing::MakeTempDir("serviceaccount");
  EXPECT_EQ(InClusterCredentials(dir, "", "").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(InClusterCredentials(dir, "10.96.0.1", "443").status().code(), absl::StatusCode::kFailedPrecondition);
  Write(dir + "/ca.crt", kCa);
  Write(dir + "/token", "tok\n");
  Write(dir + "/namespace", "ferry\n");
  absl::StatusOr<KubeCredentials> c = InClusterCredentials(dir, "10.96.0.1", "443");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->ca_pem, kCa);
  EXPECT_EQ(c->token_file, dir + "/token");
  EXPECT_EQ(c->default_namespace, "ferry");
  EXPECT_EQ(InClusterCredentials(dir, "fd00::1", "443")->server, "https://[fd00::1]:443");
}

}  // namespace
}  // namespace ferry::deployer::kubernetes
