// kubeconfig exec credential plugins against the test run's real
// kube-apiserver: a small script plays `aws eks get-token`, handing out a
// ServiceAccount token made by TokenRequest (`kubectl create token`) or the
// fixture's admin client certificate.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "services/deployer/kubernetes/kube_client.h"
#include "services/deployer/kubernetes/kube_credentials.h"
#include "services/deployer/kubernetes/kubernetes_target.h"
#include "tests/support/fake_clock.h"
#include "tests/support/kube_fixture.h"
#include "tests/support/test_database.h"

namespace ferry::deployer::kubernetes {
namespace {

using ferry::testing::Kubectl;
using ferry::testing::TestKube;
using ferry::testing::TestNamespace;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode = 0600) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

// Counts its runs, keeps what it was given, and prints an ExecCredential
// with the token in ./token (and ./extra appended to its status).
constexpr char kTokenPlugin[] = R"sh(#!/bin/sh
dir=$(dirname "$0")
echo run >>"$dir/runs"
printf '%s\n' "$KUBERNETES_EXEC_INFO" >"$dir/info"
env >"$dir/env"
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"%s}}\n' \
  "$(cat "$dir/token")" "$(cat "$dir/extra" 2>/dev/null)"
)sh";

class KubeExecCredentialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ferry::testing::MakeTempDir("kube-exec");
    std::string out;
    ASSERT_EQ(Kube("create serviceaccount deployer", &out), 0) << out;
    ASSERT_EQ(Kube("create role configmaps --verb=get,list,create --resource=configmaps", &out), 0) << out;
    ASSERT_EQ(Kube(absl::StrCat("create rolebinding deployer --role=configmaps --serviceaccount=", ns_.name(),
                                ":deployer"),
                   &out),
              0)
        << out;
  }

  int Kube(const std::string& args, std::string* out) { return Kubectl(absl::StrCat("-n ", ns_.name(), " ", args), out); }

  std::string NewToken() {
    std::string out;
    EXPECT_EQ(Kube("create token deployer --duration=1h", &out), 0) << out;
    return std::string(absl::StripAsciiWhitespace(out));
  }

  // A kubeconfig for the fixture's server whose user "exec-user" runs `plugin`.
  std::string Kubeconfig(const std::string& plugin) {
    WriteFile(dir_ + "/plugin.sh", plugin, 0700);
    std::string ca = ReadAll(TestKube().ca_file);
    std::string path = dir_ + "/kubeconfig";
    WriteFile(path, absl::StrCat(R"(apiVersion: v1
kind: Config
current-context: exec
clusters:
- name: test
  cluster:
    server: )", TestKube().server, R"(
    certificate-authority: )", TestKube().ca_file, R"(
users:
- name: exec-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./plugin.sh
      env:
      - {name: PLUGIN_SETTING, value: from-kubeconfig}
      provideClusterInfo: true
      interactiveMode: Never
contexts:
- name: exec
  context: {cluster: test, user: exec-user, namespace: )", ns_.name(), R"(}
)"));
    return path;
  }

  int Runs() {
    std::string runs = ReadAll(dir_ + "/runs");
    return static_cast<int>(std::count(runs.begin(), runs.end(), '\n'));
  }

  absl::StatusOr<long> ListConfigMaps(KubeClient& client) {
    absl::StatusOr<KubeResponse> r = client.Request("GET", absl::StrCat("/api/v1/namespaces/", ns_.name(), "/configmaps"));
    if (!r.ok()) return r.status();
    return r->code;
  }

  TestNamespace ns_;
  std::string dir_;
};

TEST_F(KubeExecCredentialTest, ATokenFromThePluginIsUsedKeptUntilItExpiresAndRenewedOn401) {
  ::testing::internal::CaptureStderr();
  std::string first = NewToken();
  ASSERT_FALSE(first.empty());
  WriteFile(dir_ + "/token", first);
  ferry::testing::FakeClock clock(absl::Now());
  WriteFile(dir_ + "/extra", absl::StrCat(R"(,"expirationTimestamp":")",
                                          absl::FormatTime(absl::RFC3339_sec, absl::Now() + absl::Hours(1),
                                                           absl::UTCTimeZone()),
                                          "\""));
  absl::StatusOr<KubeCredentials> creds = LoadKubeconfig(Kubeconfig(kTokenPlugin), "");
  ASSERT_TRUE(creds.ok()) << creds.status();
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*creds, &clock);
  ASSERT_TRUE(client.ok()) << client.status();

  EXPECT_EQ(ListConfigMaps(**client).value_or(0), 200);
  EXPECT_EQ(ListConfigMaps(**client).value_or(0), 200);
  EXPECT_EQ(Runs(), 1) << "the token is kept until it expires";
  // What the plugin was given: the cluster (provideClusterInfo), not
  // interactive, the kubeconfig's env, and nothing of the deployer's
  // environment but PATH and HOME (ctest gives this test FERRY_TEST_PG_STATE).
  std::string info = ReadAll(dir_ + "/info");
  EXPECT_NE(info.find(R"("interactive":false)"), std::string::npos) << info;
  EXPECT_NE(info.find(TestKube().server), std::string::npos) << info;
  EXPECT_NE(info.find("certificate-authority-data"), std::string::npos) << info;
  std::string env = ReadAll(dir_ + "/env");
  EXPECT_NE(env.find("PLUGIN_SETTING=from-kubeconfig"), std::string::npos) << env;
  EXPECT_EQ(env.find("FERRY_TEST"), std::string::npos) << env;

  // Past its expirationTimestamp (less the margin): the plugin runs again.
  clock.Advance(absl::Hours(1) - absl::Seconds(4));
  EXPECT_EQ(ListConfigMaps(**client).value_or(0), 200);
  EXPECT_EQ(Runs(), 2);

  // The ServiceAccount replaced: its old tokens are refused (401). The
  // client runs the plugin again (now handing out a new token) and repeats
  // the request.
  std::string out;
  ASSERT_EQ(Kube("delete serviceaccount deployer", &out), 0) << out;
  ASSERT_EQ(Kube("create serviceaccount deployer", &out), 0) << out;
  KubeCredentials old_token = *creds;
  old_token.exec.reset();
  old_token.token = first;
  std::unique_ptr<KubeClient> stale = *KubeClient::Create(old_token);
  absl::Time until = absl::Now() + absl::Seconds(30);
  while (ListConfigMaps(*stale).value_or(0) != 401 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(100));
  ASSERT_EQ(ListConfigMaps(*stale).value_or(0), 401) << "the server still takes the replaced account's token";
  std::string second = NewToken();
  WriteFile(dir_ + "/token", second);
  EXPECT_EQ(ListConfigMaps(**client).value_or(0), 200);
  EXPECT_EQ(Runs(), 3);
  EXPECT_EQ((*client)->exec_credentials()->runs(), 3);

  std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(logged.find("kube exec credential obtained"), std::string::npos) << logged;
  EXPECT_EQ(logged.find(first), std::string::npos) << "a token was logged";
  EXPECT_EQ(logged.find(second), std::string::npos) << "a token was logged";
}

TEST_F(KubeExecCredentialTest, AClientCertificateFromThePluginIsUsed) {
  // The fixture's admin certificate (group system:masters), PEM in JSON.
  constexpr char kCertPlugin[] = R"sh(#!/bin/sh
dir=$(dirname "$0")
pem() { awk '{printf "%s\\n", $0}' "$1"; }
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"%s","clientKeyData":"%s"}}\n' \
  "$(pem "$dir/cert.pem")" "$(pem "$dir/key.pem")"
)sh";
  WriteFile(dir_ + "/cert.pem", ReadAll(TestKube().client_cert_file));
  WriteFile(dir_ + "/key.pem", ReadAll(TestKube().client_key_file));
  absl::StatusOr<KubeCredentials> creds = LoadKubeconfig(Kubeconfig(kCertPlugin), "");
  ASSERT_TRUE(creds.ok()) << creds.status();
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*creds);
  ASSERT_TRUE(client.ok()) << client.status();
  // Listing namespaces takes a cluster-wide grant: the admin's certificate, not the account's token.
  absl::StatusOr<KubeResponse> r = (*client)->Request("GET", "/api/v1/namespaces");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->code, 200) << r->body;
}

TEST_F(KubeExecCredentialTest, AFailingPluginNamesTheUserAndExitStatusButNotItsOutput) {
  constexpr char kFailing[] = R"sh(#!/bin/sh
echo '{"status":{"token":"leaked-s3cret"}}'
echo "could not refresh leaked-s3cret" >&2
exit 3
)sh";
  std::string kubeconfig = Kubeconfig(kFailing);
  absl::StatusOr<KubeCredentials> creds = LoadKubeconfig(kubeconfig, "");
  ASSERT_TRUE(creds.ok()) << creds.status();
  absl::StatusOr<std::unique_ptr<KubeClient>> client = KubeClient::Create(*creds);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<KubeResponse> r = (*client)->Request("GET", "/api/v1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_NE(r.status().message().find(R"(kubeconfig user "exec-user")"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("exited with status 3"), std::string::npos) << r.status();
  EXPECT_EQ(r.status().message().find("leaked-s3cret"), std::string::npos) << r.status();

  // Through the target: the deployment's error says the same.
  KubernetesTargetFactory factory{"/nonexistent", "", ""};
  v1::DeployTarget t;
  t.set_kind(v1::TARGET_KIND_KUBERNETES);
  t.mutable_kubernetes()->set_kubeconfig(kubeconfig);
  absl::StatusOr<Target*> target = factory.For(t);
  ASSERT_TRUE(target.ok()) << target.status();
  TargetObject cm{ObjectKey{"", "ConfigMap", "", "settings"},
                  R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"}})", "app/cm.yaml", 0};
  absl::StatusOr<std::vector<TargetObject>> prepared = (*target)->Prepare(AppScope{"web", "prod"}, {cm}, nullptr);
  ASSERT_FALSE(prepared.ok());
  EXPECT_NE(prepared.status().message().find("exited with status 3"), std::string::npos) << prepared.status();
  EXPECT_EQ(prepared.status().message().find("leaked-s3cret"), std::string::npos) << prepared.status();

  // A command that is not there: refused, naming the field to fix.
  WriteFile(kubeconfig, absl::StrReplaceAll(ReadAll(kubeconfig), {{"./plugin.sh", "./missing.sh"}}));
  creds = LoadKubeconfig(kubeconfig, "");
  ASSERT_TRUE(creds.ok()) << creds.status();
  r = (*KubeClient::Create(*creds))->Request("GET", "/api/v1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_NE(r.status().message().find("users.exec-user.exec.command"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace ferry::deployer::kubernetes
