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

  Write(dir + "/config", Config("", "    auth-provider: {name: gcp}"));
  c = LoadKubeconfig(dir + "/config", "one");
  EXPECT_NE(c.status().message().find("users.u1.auth-provider"), std::string::npos) << c.status();

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

TEST(KubeCredentialsTest, ReadsAnExecPluginAsKubectlDoes) {
  std::string dir = testing::MakeTempDir("kubeconfig");
  Write(dir + "/config", Config("", R"(    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [--region, eu-west-1, eks, get-token, --cluster-name, shop]
      env:
      - {name: AWS_PROFILE, value: deploy}
      provideClusterInfo: true
      interactiveMode: Never)"));
  absl::StatusOr<KubeCredentials> c = LoadKubeconfig(dir + "/config", "one");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_TRUE(c->exec.has_value());
  EXPECT_EQ(c->exec->user, "u1");
  EXPECT_EQ(c->exec->api_version, "client.authentication.k8s.io/v1beta1");
  EXPECT_EQ(c->exec->command, "aws");  // A bare name: looked up in PATH when run.
  EXPECT_EQ(c->exec->args, (std::vector<std::string>{"--region", "eu-west-1", "eks", "get-token", "--cluster-name",
                                                      "shop"}));
  EXPECT_EQ(c->exec->env, std::vector<std::string>{"AWS_PROFILE=deploy"});
  EXPECT_TRUE(c->exec->provide_cluster_info);
  EXPECT_TRUE(c->token.empty());

  // A command with a "/" is relative to the kubeconfig's folder.
  Write(dir + "/config", Config("", "    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/token}"));
  c = LoadKubeconfig(dir + "/config", "one");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->exec->command, dir + "/bin/token");
  EXPECT_FALSE(c->exec->provide_cluster_info);

  for (const auto& [user, field] : std::vector<std::pair<std::string, std::string>>{
           {"    exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}", "exec.apiVersion"},
           {"    exec: {apiVersion: client.authentication.k8s.io/v1}", "exec.command"},
           {"    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, interactiveMode: Always}",
            "exec.interactiveMode"},
           {"    exec: {apiVersion: client.authentication.k8s.io/v1, command: x, env: [{value: v}]}", "exec.env"},
           {"    token: abc\n    exec: {apiVersion: client.authentication.k8s.io/v1, command: x}", "users.u1:"}}) {
    Write(dir + "/config", Config("", user));
    c = LoadKubeconfig(dir + "/config", "one");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << user;
    EXPECT_NE(c.status().message().find(field), std::string::npos) << c.status();
  }
}

TEST(KubeCredentialsTest, ExecCredentialOutputIsCheckedWithoutQuotingIt) {
  const std::string v1 = "client.authentication.k8s.io/v1";
  absl::StatusOr<ExecCredential> c = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
          "status":{"token":"s3cr3t-tok","expirationTimestamp":"2030-01-02T03:04:05Z"}})",
      v1, "who");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->token, "s3cr3t-tok");
  ASSERT_TRUE(c->expiry.has_value());
  EXPECT_EQ(*c->expiry, absl::FromUnixSeconds(1893553445));
  c = ParseExecCredential(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
      "status":{"clientCertificateData":"CERT","clientKeyData":"KEY"}})", v1, "who");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->client_cert_pem, "CERT");
  EXPECT_FALSE(c->expiry.has_value());
  for (const std::string& bad : {
           std::string("token=s3cr3t-tok"),
           std::string(R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential",
                           "status":{"token":"s3cr3t-tok"}})"),
           std::string(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
                           "status":{"clientKeyData":"s3cr3t-tok"}})"),
           std::string(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
                           "status":{"token":"s3cr3t-tok","expirationTimestamp":"tomorrow"}})")}) {
    c = ParseExecCredential(bad, v1, "who");
    EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition) << bad;
    EXPECT_EQ(c.status().message().find("s3cr3t"), std::string::npos) << c.status();
  }
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
