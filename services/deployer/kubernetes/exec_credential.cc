#include "services/deployer/kubernetes/exec_credential.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/json/json.h"
#include "common/logging/logger.h"
#include "common/process/run_process.h"

namespace ferry::deployer::kubernetes {
namespace {

using nlohmann::json;

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string StringField(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

absl::StatusOr<ExecCredential> ParseExecCredential(const std::string& out, const std::string& api_version,
                                                   const std::string& who) {
  absl::StatusOr<json> doc = ParseJson(out);
  if (!doc.ok() || !doc->is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": its output is not an ExecCredential (not a JSON object)"));
  }
  if (StringField(*doc, "kind") != "ExecCredential") {
    return absl::FailedPreconditionError(absl::StrCat(who, ": its output's kind is not ExecCredential"));
  }
  if (StringField(*doc, "apiVersion") != api_version) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": its output's apiVersion \"",
                                                      StringField(*doc, "apiVersion").substr(0, 80),
                                                      "\" is not the kubeconfig's \"", api_version, "\""));
  }
  auto status = doc->find("status");
  if (status == doc->end() || !status->is_object()) {
    return absl::FailedPreconditionError(absl::StrCat(who, ": its output has no status"));
  }
  ExecCredential c;
  c.token = StringField(*status, "token");
  c.client_cert_pem = StringField(*status, "clientCertificateData");
  c.client_key_pem = StringField(*status, "clientKeyData");
  if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": status.clientCertificateData and status.clientKeyData go together"));
  }
  if (c.token.empty() && c.client_cert_pem.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ": its output has neither status.token nor status.clientCertificateData"));
  }
  std::string expiry = StringField(*status, "expirationTimestamp");
  if (!expiry.empty()) {
    absl::Time t;
    std::string err;
    if (!absl::ParseTime(absl::RFC3339_full, expiry, &t, &err)) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": status.expirationTimestamp is not an RFC 3339 time: ", err));
    }
    c.expiry = t;
  }
  return c;
}

ExecCredentialSource::ExecCredentialSource(ExecPlugin plugin, std::string server, std::string ca_pem,
                                           const Clock* clock)
    : plugin_(std::move(plugin)), server_(std::move(server)), ca_pem_(std::move(ca_pem)), clock_(clock) {
  if (clock_ == nullptr) {
    static const SystemClock* system = new SystemClock();
    clock_ = system;
  }
}

std::string ExecCredentialSource::Who() const {
  return absl::StrCat("kubeconfig user \"", plugin_.user, "\": exec plugin \"", plugin_.command, "\"");
}

absl::StatusOr<std::shared_ptr<const ExecCredential>> ExecCredentialSource::Get() {
  ferry::MutexLock l(&mu_);
  if (current_ != nullptr && (!current_->expiry || clock_->Now() < *current_->expiry - kExpiryMargin)) {
    return current_;
  }
  current_ = nullptr;
  absl::StatusOr<ExecCredential> c = Run();
  if (!c.ok()) return c.status();
  current_ = std::make_shared<const ExecCredential>(*std::move(c));
  return current_;
}

void ExecCredentialSource::Invalidate(const std::shared_ptr<const ExecCredential>& used) {
  ferry::MutexLock l(&mu_);
  if (current_ == used) current_ = nullptr;
}

int64_t ExecCredentialSource::runs() const {
  ferry::MutexLock l(&mu_);
  return runs_;
}

absl::StatusOr<ExecCredential> ExecCredentialSource::Run() {
  ++runs_;
  json info = {{"apiVersion", plugin_.api_version}, {"kind", "ExecCredential"}, {"spec", {{"interactive", false}}}};
  if (plugin_.provide_cluster_info) {
    json cluster = {{"server", server_}};
    if (!ca_pem_.empty()) cluster["certificate-authority-data"] = absl::Base64Escape(ca_pem_);
    info["spec"]["cluster"] = cluster;
  }
  process::ProcessOptions options;
  options.env = {"PATH=" + EnvOr("PATH", process::kDefaultCommandPath), "HOME=" + EnvOr("HOME", "/"),
                 "LANG=C.UTF-8"};
  options.env.insert(options.env.end(), plugin_.env.begin(), plugin_.env.end());
  absl::StatusOr<std::string> info_text = DumpJson(info);
  if (!info_text.ok()) return absl::InvalidArgumentError(absl::StrCat("exec credential plugin input: ", info_text.status().message()));
  options.env.push_back("KUBERNETES_EXEC_INFO=" + *info_text);
  options.timeout = kTimeout;
  options.max_stdout_bytes = kMaxOutputBytes;
  options.kill_at_stdout_limit = true;
  std::vector<std::string> argv = {plugin_.command};
  argv.insert(argv.end(), plugin_.args.begin(), plugin_.args.end());
  absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, options);
  if (!r.ok()) {
    if (r.status().code() == absl::StatusCode::kNotFound || r.status().code() == absl::StatusCode::kPermissionDenied) {
      return absl::FailedPreconditionError(
          absl::StrCat(Who(), " cannot be run (", r.status().message(), "); install it or fix users.", plugin_.user,
                       ".exec.command"));
    }
    return absl::UnavailableError(absl::StrCat(Who(), " could not be run: ", r.status().message()));
  }
  // Its output is not quoted: stdout is where the credential goes and
  // stderr may echo it.
  if (r->timed_out) {
    return absl::UnavailableError(
        absl::StrCat(Who(), " did not finish within ", absl::FormatDuration(kTimeout), " and was killed"));
  }
  if (r->stdout_truncated) {
    return absl::FailedPreconditionError(absl::StrCat(Who(), " wrote more than ", kMaxOutputBytes, " bytes"));
  }
  if (!r->succeeded()) {
    std::string how = r->exited() ? absl::StrCat("exited with status ", r->exit_code)
                                  : absl::StrCat("was ended by signal ", r->term_signal);
    return absl::UnavailableError(absl::StrCat(
        Who(), " ", how, " (its output is not shown, as it may hold credentials: run the command by hand to see it)"));
  }
  absl::StatusOr<ExecCredential> c = ParseExecCredential(r->stdout_text, plugin_.api_version, Who());
  if (!c.ok()) return c.status();
  logging::Info("kube exec credential obtained",
                {{"user", plugin_.user},
                 {"kind", c->token.empty() ? "client certificate" : "token"},
                 {"expires", c->expiry ? absl::FormatTime(absl::RFC3339_sec, *c->expiry, absl::UTCTimeZone()) : "never"}});
  return c;
}

}  // namespace ferry::deployer::kubernetes
