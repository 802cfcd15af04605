#include "tests/support/kube_fixture.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"

namespace ferry::testing {
namespace {

std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

KubeFixture Load() {
  const char* env = std::getenv("FERRY_TEST_KUBE_STATE");
  KubeFixture f;
  f.state_dir = env != nullptr && *env != '\0' ? env : FERRY_TEST_KUBE_STATE_DEFAULT;
  f.kubeconfig = f.state_dir + "/kubeconfig";
  f.server = ReadLine(f.state_dir + "/server");
  f.ca_file = f.state_dir + "/ca.crt";
  f.client_cert_file = f.state_dir + "/admin.crt";
  f.client_key_file = f.state_dir + "/admin.key";
  f.etcd = ReadLine(f.state_dir + "/etcd");
  if (f.server.empty() || !std::filesystem::exists(f.kubeconfig)) {
    std::cerr << "no test kube-apiserver: " << f.state_dir
              << "/server or /kubeconfig is missing. Run through ctest (the kube fixture starts one; the "
                 "test needs ferry_test(... KUBE)), or run tests/support/kube-fixture start <dir> and set "
                 "FERRY_TEST_KUBE_STATE=<dir>.\n";
    std::abort();
  }
  return f;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

const KubeFixture& TestKube() {
  static const KubeFixture* fixture = new KubeFixture(Load());
  return *fixture;
}

std::string KubectlPath() { return FERRY_TEST_SOURCE_DIR "/.tools/bin/kubectl"; }
std::string HelmPath() { return FERRY_TEST_SOURCE_DIR "/.tools/bin/helm"; }

int Kubectl(const std::string& args, std::string* output, const std::string& stdin_text) {
  return KubectlWith(TestKube().kubeconfig, args, output, stdin_text);
}

int KubectlWith(const std::string& kubeconfig, const std::string& args, std::string* output,
                const std::string& stdin_text) {
  std::string command = absl::StrCat(ShellQuote(KubectlPath()), " --kubeconfig ", ShellQuote(kubeconfig), " ", args);
  std::string input_file;
  if (!stdin_text.empty()) {
    std::array<char, 64> name{};
    std::snprintf(name.data(), name.size(), "/tmp/ferry-kubectl-in.XXXXXX");
    int fd = mkstemp(name.data());
    if (fd < 0) {
      if (output != nullptr) *output = "mkstemp failed";
      return -1;
    }
    input_file = name.data();
    size_t done = 0;
    while (done < stdin_text.size()) {
      ssize_t n = write(fd, stdin_text.data() + done, stdin_text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fd);
    absl::StrAppend(&command, " <", ShellQuote(input_file));
  } else {
    absl::StrAppend(&command, " </dev/null");
  }
  absl::StrAppend(&command, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    if (!input_file.empty()) std::filesystem::remove(input_file);
    if (output != nullptr) *output = "popen failed";
    return -1;
  }
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = pclose(pipe);
  if (!input_file.empty()) std::filesystem::remove(input_file);
  if (output != nullptr) *output = std::move(out);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int WriteStatus(const std::string& resource, const std::string& ns, const std::string& name,
                const std::string& status_json, std::string* output) {
  std::string args = absl::StrCat("patch ", ShellQuote(resource), " ", ShellQuote(name));
  if (!ns.empty()) absl::StrAppend(&args, " -n ", ShellQuote(ns));
  absl::StrAppend(&args, " --subresource=status --type=merge -p ",
                  ShellQuote(absl::StrCat("{\"status\":", status_json, "}")));
  return Kubectl(args, output);
}

TestNamespace::TestNamespace() {
  static std::atomic<int> counter{0};
  name_ = absl::StrCat("ferry-test-", getpid(), "-", counter.fetch_add(1));
  std::string out;
  if (Kubectl(absl::StrCat("create namespace ", name_), &out) != 0) {
    std::cerr << "could not create namespace " << name_ << ": " << out << "\n";
    std::abort();
  }
}

TestNamespace::~TestNamespace() { Kubectl(absl::StrCat("delete namespace ", name_, " --wait=false"), nullptr); }

}  // namespace ferry::testing
