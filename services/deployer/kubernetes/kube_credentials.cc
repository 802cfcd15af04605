#include "services/deployer/kubernetes/kube_credentials.h"

#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ferry::deployer::kubernetes {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read \"", path, "\""));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Resolve(const std::string& dir, const std::string& file) {
  if (file.empty() || file[0] == '/' || dir.empty()) return file;
  return absl::StrCat(dir, "/", file);
}

// Finds the entry named `name` in a kubeconfig list (clusters, users, contexts).
YAML::Node Named(const YAML::Node& list, const std::string& name) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const YAML::Node& entry : list) {
    if (entry.IsMap() && entry["name"] && entry["name"].IsScalar() && entry["name"].Scalar() == name) return entry;
  }
  return YAML::Node();
}

std::string Scalar(const YAML::Node& map, const char* key) {
  if (!map || !map.IsMap() || !map[key] || !map[key].IsScalar()) return "";
  return map[key].Scalar();
}

// `<field>-data` (base64) or `<field>` (a file): the PEM bytes, or "" when neither is set.
absl::StatusOr<std::string> DataOrFile(const YAML::Node& map, const std::string& field, const std::string& dir,
                                       const std::string& where) {
  std::string data = Scalar(map, (field + "-data").c_str());
  if (!data.empty()) {
    std::string pem;
    if (!absl::Base64Unescape(data, &pem)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".", field, "-data: is not base64"));
    }
    return pem;
  }
  std::string file = Scalar(map, field.c_str());
  if (file.empty()) return std::string();
  absl::StatusOr<std::string> pem = ReadFile(Resolve(dir, file), absl::StrCat(where, ".", field));
  if (!pem.ok()) return absl::InvalidArgumentError(pem.status().message());
  return pem;
}

// users.<name>.exec: a client.authentication.k8s.io/v1 or v1beta1 plugin.
absl::StatusOr<ExecPlugin> ReadExec(const YAML::Node& e, const std::string& user, const std::string& dir,
                                    const std::string& where) {
  if (!e.IsMap()) return absl::InvalidArgumentError(where + ": is not a mapping");
  ExecPlugin p;
  p.user = user;
  p.api_version = Scalar(e, "apiVersion");
  if (p.api_version != "client.authentication.k8s.io/v1" && p.api_version != "client.authentication.k8s.io/v1beta1") {
    return absl::InvalidArgumentError(absl::StrCat(where, ".apiVersion: \"", p.api_version,
                                                   "\" is not client.authentication.k8s.io/v1 or v1beta1"));
  }
  p.command = Scalar(e, "command");
  if (p.command.empty()) return absl::InvalidArgumentError(where + ".command: is missing");
  if (p.command.find('/') != std::string::npos) p.command = Resolve(dir, p.command);  // As kubectl does.
  if (e["args"]) {
    if (!e["args"].IsSequence()) return absl::InvalidArgumentError(where + ".args: is not a list");
    for (const YAML::Node& a : e["args"]) {
      if (!a.IsScalar()) return absl::InvalidArgumentError(where + ".args: holds a non-string");
      p.args.push_back(a.Scalar());
    }
  }
  if (e["env"] && !e["env"].IsNull()) {
    if (!e["env"].IsSequence()) return absl::InvalidArgumentError(where + ".env: is not a list");
    for (const YAML::Node& v : e["env"]) {
      std::string name = Scalar(v, "name");
      if (name.empty() || name.find('=') != std::string::npos) {
        return absl::InvalidArgumentError(where + ".env: an entry without a valid name");
      }
      p.env.push_back(absl::StrCat(name, "=", Scalar(v, "value")));
    }
  }
  if (Scalar(e, "interactiveMode") == "Always") {
    return absl::InvalidArgumentError(
        where + ".interactiveMode: Always is refused (the deployer runs plugins without a terminal)");
  }
  p.provide_cluster_info = Scalar(e, "provideClusterInfo") == "true";
  return p;
}

absl::Status CheckServer(const std::string& server, const std::string& where) {
  if (!absl::StartsWith(server, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".server: \"", server, "\" must be an https:// URL (Ferry always verifies TLS)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KubeCredentials> LoadKubeconfig(const std::string& path, const std::string& context) {
  absl::StatusOr<std::string> text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  YAML::Node doc;
  try {
    doc = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("kubeconfig \"", path, "\": not YAML: ", e.what()));
  }
  const std::string where = absl::StrCat("kubeconfig \"", path, "\"");
  if (!doc.IsMap()) return absl::InvalidArgumentError(where + ": not a kubeconfig mapping");
  std::string dir = path.rfind('/') == std::string::npos ? "" : path.substr(0, path.rfind('/'));
  try {
    std::string context_name = context.empty() ? Scalar(doc, "current-context") : context;
    if (context_name.empty()) {
      return absl::InvalidArgumentError(where + ": no context given and no current-context");
    }
    YAML::Node ctx = Named(doc["contexts"], context_name);
    if (!ctx || !ctx.IsMap()) return absl::InvalidArgumentError(absl::StrCat(where, ": no context \"", context_name, "\""));
    YAML::Node c = ctx["context"];
    std::string cluster_name = Scalar(c, "cluster");
    std::string user_name = Scalar(c, "user");
    YAML::Node cluster = Named(doc["clusters"], cluster_name)["cluster"];
    if (!cluster || !cluster.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": context \"", context_name, "\" names cluster \"", cluster_name, "\", which is not defined"));
    }
    KubeCredentials out;
    out.description = absl::StrCat("kubeconfig ", path, " context ", context_name);
    const std::string cw = absl::StrCat(where, ": clusters.", cluster_name);
    out.server = std::string(absl::StripSuffix(Scalar(cluster, "server"), "/"));
    if (absl::Status s = CheckServer(out.server, cw); !s.ok()) return s;
    if (Scalar(cluster, "insecure-skip-tls-verify") == "true") {
      return absl::InvalidArgumentError(
          absl::StrCat(cw, ".insecure-skip-tls-verify: is refused; give the cluster's certificate-authority"));
    }
    absl::StatusOr<std::string> ca = DataOrFile(cluster, "certificate-authority", dir, cw);
    if (!ca.ok()) return ca.status();
    out.ca_pem = *ca;
    out.default_namespace = Scalar(c, "namespace");
    if (!user_name.empty()) {
      YAML::Node user = Named(doc["users"], user_name)["user"];
      const std::string uw = absl::StrCat(where, ": users.", user_name);
      if (!user || !user.IsMap()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": context \"", context_name, "\" names user \"", user_name, "\", which is not defined"));
      }
      if (user["auth-provider"]) {
        return absl::InvalidArgumentError(absl::StrCat(
            uw, ".auth-provider: auth-provider plugins are not supported (Kubernetes removed them); use the "
                "provider's exec plugin (e.g. gke-gcloud-auth-plugin), a client certificate or a token"));
      }
      absl::StatusOr<std::string> cert = DataOrFile(user, "client-certificate", dir, uw);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = DataOrFile(user, "client-key", dir, uw);
      if (!key.ok()) return key.status();
      if (cert->empty() != key->empty()) {
        return absl::InvalidArgumentError(absl::StrCat(uw, ": client-certificate and client-key go together"));
      }
      out.client_cert_pem = *cert;
      out.client_key_pem = *key;
      out.token = Scalar(user, "token");
      std::string token_file = Scalar(user, "tokenFile");
      if (!token_file.empty()) out.token_file = Resolve(dir, token_file);
      if (user["exec"]) {
        absl::StatusOr<ExecPlugin> exec = ReadExec(user["exec"], user_name, dir, uw + ".exec");
        if (!exec.ok()) return exec.status();
        if (!out.token.empty() || !out.token_file.empty() || !out.client_cert_pem.empty()) {
          return absl::InvalidArgumentError(
              absl::StrCat(uw, ": exec beside a token or client certificate; give one way to log in"));
        }
        out.exec = *std::move(exec);
      }
    }
    return out;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", e.what()));
  }
}

absl::StatusOr<KubeCredentials> InClusterCredentials(const std::string& account_dir, const std::string& host,
                                                     const std::string& port) {
  if (host.empty() || port.empty()) {
    return absl::FailedPreconditionError(
        "in-cluster credentials: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod)");
  }
  KubeCredentials out;
  out.description = "in-cluster";
  out.server = absl::StrContains(host, ":") ? absl::StrCat("https://[", host, "]:", port)
                                            : absl::StrCat("https://", host, ":", port);
  absl::StatusOr<std::string> ca = ReadFile(account_dir + "/ca.crt", "in-cluster CA");
  if (!ca.ok()) return absl::FailedPreconditionError(ca.status().message());
  out.ca_pem = *ca;
  out.token_file = account_dir + "/token";
  absl::StatusOr<std::string> token = ReadFile(out.token_file, "in-cluster token");
  if (!token.ok()) return absl::FailedPreconditionError(token.status().message());
  absl::StatusOr<std::string> ns = ReadFile(account_dir + "/namespace", "in-cluster namespace");
  if (ns.ok()) out.default_namespace = std::string(absl::StripAsciiWhitespace(*ns));
  return out;
}

}  // namespace ferry::deployer::kubernetes
