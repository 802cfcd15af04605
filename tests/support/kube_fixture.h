#pragma once

#include <string>

namespace ferry::testing {

// The test run's real kube-apiserver (and etcd), started by the `kube` ctest
// fixture (tests/support/kube-fixture; binaries built by
// scripts/install-kube-testbed). No kubelet and no controllers run: a test
// that needs a controller's effect writes it itself (e.g. a Deployment's
// status through the status subresource). Tests say they need it with
// ferry_test(... KUBE), which adds the fixture and the label "kube".
struct KubeFixture {
  std::string state_dir;         // build/kube-fixture, or $FERRY_TEST_KUBE_STATE
  std::string kubeconfig;        // context "ferry-test", user in system:masters, certificates embedded
  std::string server;            // https://127.0.0.1:<port>
  std::string ca_file;           // PEM CA of the server's (and the clients') certificates
  std::string client_cert_file;  // PEM admin client certificate (group system:masters)
  std::string client_key_file;   // PEM key of client_cert_file
  std::string etcd;              // http://127.0.0.1:<port>, etcd's client URL (its v3 HTTP gateway)
};

// Reads the running fixture's files; aborts the test binary with a clear
// message when the fixture is not running.
const KubeFixture& TestKube();

// kubectl and helm as scripts/install-k8s-tools installs them (.tools/bin).
std::string KubectlPath();
std::string HelmPath();

// Runs `kubectl --kubeconfig <fixture> <args>` (args are passed through a
// shell: quote as needed), feeding `stdin_text` when not empty. Returns its
// exit status; `output` (when not null) receives stdout and stderr.
int Kubectl(const std::string& args, std::string* output = nullptr, const std::string& stdin_text = "");
// The same with another kubeconfig (e.g. one holding a ServiceAccount's token).
int KubectlWith(const std::string& kubeconfig, const std::string& args, std::string* output = nullptr,
                const std::string& stdin_text = "");

// Plays a controller's part: merges `status_json` (a JSON object, e.g.
// {"availableReplicas":2}) into the status of `resource` (e.g.
// "deployments.apps", "persistentvolumeclaims", "jobs.batch") `name` in
// namespace `ns` (empty: cluster-scoped) through the status subresource, as
// the kubelet and the controllers would. Returns kubectl's exit status.
int WriteStatus(const std::string& resource, const std::string& ns, const std::string& name,
                const std::string& status_json, std::string* output = nullptr);

// A fresh namespace (ferry-test-<pid>-<n>) in the fixture's API server,
// deleted on destruction (without waiting: no controller finalizes it).
class TestNamespace {
 public:
  TestNamespace();
  ~TestNamespace();
  TestNamespace(const TestNamespace&) = delete;
  TestNamespace& operator=(const TestNamespace&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string name_;
};

}  // namespace ferry::testing
