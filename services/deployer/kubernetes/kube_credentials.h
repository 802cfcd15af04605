#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "services/deployer/kubernetes/exec_credential.h"

namespace ferry::deployer::kubernetes {

// How to reach one cluster: its API server, the CA that signs its serving
// certificate, and the client's identity (a client certificate and key, a
// bearer token, or a token file re-read on every request so rotated
// service-account tokens are picked up). TLS verification is always on:
// there is no field to turn it off.
struct KubeCredentials {
  std::string server;           // https://host:port, without a trailing slash.
  std::string ca_pem;           // PEM bundle of the cluster's CA; empty: the system's CAs.
  std::string client_cert_pem;  // PEM client certificate, with client_key_pem.
  std::string client_key_pem;
  std::string token;            // Bearer token.
  std::string token_file;       // Bearer token read from this file per request (in-cluster).
  std::optional<ExecPlugin> exec;  // A credential plugin giving the token or certificate (kubeconfig users.*.exec).
  std::string default_namespace;  // The context's namespace, or the pod's; empty: none given.
  std::string description;      // "kubeconfig <path> context <name>" or "in-cluster", for messages.
};

// Reads a kubeconfig file (YAML) and picks `context` (empty: its
// current-context): the cluster's server and CA (certificate-authority-data
// or -file), the user's client-certificate/-key (-data or file) or token
// (token or tokenFile) or exec credential plugin (client.authentication.k8s.io
// v1 or v1beta1; KubeClient runs it, ExecCredentialSource). Relative file
// names (and an exec command with a "/") are relative to the kubeconfig's
// directory. Refused with INVALID_ARGUMENT naming the field: a missing
// context, cluster or user, a server that is not https://,
// insecure-skip-tls-verify, an exec plugin of another apiVersion, without a
// command, with interactiveMode Always or beside a token or certificate, and
// auth-provider plugins (removed from Kubernetes). NOT_FOUND when the file is
// missing.
absl::StatusOr<KubeCredentials> LoadKubeconfig(const std::string& path, const std::string& context);

// The pod's own credentials: the API server at https://<host>:<port> (from
// KUBERNETES_SERVICE_HOST and _PORT, passed in), the token and CA in
// `account_dir` (normally /var/run/secrets/kubernetes.io/serviceaccount),
// and the pod's namespace. FAILED_PRECONDITION when not in a pod.
absl::StatusOr<KubeCredentials> InClusterCredentials(const std::string& account_dir, const std::string& host,
                                                     const std::string& port);

}  // namespace ferry::deployer::kubernetes
