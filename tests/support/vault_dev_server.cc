#include "tests/support/vault_dev_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/support/service_process.h"
#include "tests/support/test_database.h"

namespace ferry::testing {

std::string VaultDevServer::BinaryPath() {
  const char* env = std::getenv("FERRY_VAULT_BIN");
  if (env != nullptr && *env != '\0') return env;
  return FERRY_OPENBAO_BIN_DEFAULT;
}

namespace {

bool Accepts(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

}  // namespace

absl::StatusOr<std::unique_ptr<VaultDevServer>> VaultDevServer::Start(const std::string& tls_dir) {
  const std::string bin = BinaryPath();
  if (access(bin.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("no Vault-API server at ", bin, " (scripts/install-openbao, run by scripts/install-deps, installs "
                     "OpenBao; or set FERRY_VAULT_BIN to a vault binary)"));
  }
  std::unique_ptr<VaultDevServer> v(new VaultDevServer());
  v->dir_ = MakeTempDir("vault-dev");
  v->port_ = FreePort();
  v->root_token_ = absl::StrCat("root-", getpid(), "-", absl::ToUnixNanos(absl::Now()));
  const std::string listen = absl::StrCat("-dev-listen-address=127.0.0.1:", v->port_);
  const std::string root = "-dev-root-token-id=" + v->root_token_;
  const std::string log = v->dir_ + "/vault.log";
  const std::string home = "HOME=" + v->dir_;
  v->tls_dir_ = tls_dir;
  const std::string tls_flag = tls_dir.empty() ? "-dev-no-store-token" : "-dev-tls";
  const std::string tls_dir_flag = tls_dir.empty() ? "-dev-no-store-token" : "-dev-tls-cert-dir=" + tls_dir;
  v->pid_ = fork();
  if (v->pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, 1);
    dup2(out, 2);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    const char* envp[] = {home.c_str(), "PATH=/usr/bin:/bin", "VAULT_LOG_LEVEL=info", nullptr};
    execle(bin.c_str(), "vault", "server", "-dev", root.c_str(), listen.c_str(), "-dev-no-store-token",
           tls_flag.c_str(), tls_dir_flag.c_str(), nullptr, envp);
    _exit(127);
  }
  if (v->pid_ < 0) return absl::InternalError("fork failed");
  std::fprintf(stderr, "vault dev server: %s on 127.0.0.1:%d\n", bin.c_str(), v->port_);
  httplib::Client c("127.0.0.1", v->port_);
  c.set_connection_timeout(1);
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (tls_dir.empty()) {
      auto res = c.Get("/v1/sys/health");
      if (res && res->status == 200) return v;
    } else if (access(v->ca_file().c_str(), R_OK) == 0 && Accepts(v->port_)) {
      return v;
    }
    int status = 0;
    if (waitpid(v->pid_, &status, WNOHANG) == v->pid_) {
      v->pid_ = -1;
      return absl::UnavailableError(absl::StrCat("vault server -dev exited: ", v->Log()));
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return absl::UnavailableError(absl::StrCat("vault server -dev did not answer within 30 s: ", v->Log()));
}

VaultDevServer::~VaultDevServer() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string VaultDevServer::address() const {
  return absl::StrCat(tls_dir_.empty() ? "http" : "https", "://127.0.0.1:", port_);
}

std::string VaultDevServer::Log() const {
  std::ifstream in(dir_ + "/vault.log");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::StatusOr<nlohmann::json> VaultDevServer::Call(const std::string& method, const std::string& path,
                                                    const nlohmann::json& body) const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(10);
  httplib::Headers headers = {{"X-Vault-Token", root_token_}};
  const std::string url = "/v1/" + path;
  const std::string text = body.is_null() ? "" : body.dump();
  httplib::Result res = method == "GET"      ? c.Get(url.c_str(), headers)
                        : method == "DELETE" ? c.Delete(url.c_str(), headers, text, "application/json")
                        : method == "PUT"    ? c.Put(url.c_str(), headers, text, "application/json")
                                             : c.Post(url.c_str(), headers, text, "application/json");
  if (!res) return absl::UnavailableError(absl::StrCat(method, " ", url, ": no answer"));
  if (res->status < 200 || res->status > 299) {
    return absl::FailedPreconditionError(absl::StrCat(method, " ", url, ": HTTP ", res->status, ": ", res->body));
  }
  if (res->body.empty()) return nlohmann::json();
  return nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
}

absl::Status VaultDevServer::WriteKv(const std::string& path, const nlohmann::json& data) const {
  return Call("POST", "secret/data/" + path, {{"data", data}}).status();
}

absl::Status VaultDevServer::ReadPolicy(const std::string& name, const std::string& path_glob) const {
  const std::string hcl = absl::StrCat("path \"secret/data/", path_glob, "\" { capabilities = [\"read\"] }");
  return Call("PUT", "sys/policies/acl/" + name, {{"policy", hcl}}).status();
}

absl::StatusOr<std::string> VaultDevServer::AppRole(const std::string& role, const std::string& policy,
                                                    int token_ttl_seconds) const {
  if (!approle_enabled_) {
    absl::Status s = Call("POST", "sys/auth/approle", {{"type", "approle"}}).status();
    if (!s.ok()) return s;
    approle_enabled_ = true;
  }
  absl::Status s = Call("POST", "auth/approle/role/" + role,
                        {{"token_policies", policy}, {"token_ttl", absl::StrCat(token_ttl_seconds, "s")},
                         {"token_max_ttl", absl::StrCat(token_ttl_seconds, "s")}})
                       .status();
  if (!s.ok()) return s;
  absl::StatusOr<nlohmann::json> id = Call("GET", "auth/approle/role/" + role + "/role-id");
  if (!id.ok()) return id.status();
  return (*id)["data"]["role_id"].get<std::string>();
}

absl::StatusOr<std::string> VaultDevServer::NewSecretId(const std::string& role) const {
  absl::StatusOr<nlohmann::json> r = Call("POST", "auth/approle/role/" + role + "/secret-id");
  if (!r.ok()) return r.status();
  return (*r)["data"]["secret_id"].get<std::string>();
}

absl::StatusOr<std::string> VaultDevServer::Token(const std::string& policy, int ttl_seconds) const {
  absl::StatusOr<nlohmann::json> r = Call(
      "POST", "auth/token/create", {{"policies", {policy}}, {"ttl", absl::StrCat(ttl_seconds, "s")}, {"no_parent", true}});
  if (!r.ok()) return r.status();
  return (*r)["auth"]["client_token"].get<std::string>();
}

}  // namespace ferry::testing
