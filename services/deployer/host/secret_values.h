#pragma once

#include <string>

#include "absl/status/status.h"
#include "services/deployer/host/host_objects.h"
#include "services/deployer/secrets/secret_resolver.h"
#include "services/deployer/target.h"

namespace ferry::deployer::host {

// Application secrets of the host target's objects: Process env entries with
// valueFrom.secretRef and ConfigFiles with contentFrom.secretRef.
//
// The recorded object (plan, deployment, applied record, live state, pid
// records) carries the reference and digests only; the value exists in the
// running instance's environment and in the ConfigFile written for the
// workload, nowhere else.

// True when `obj` refers to a secret.
bool HasSecretValues(const HostObject& obj);

// At Prepare: resolves every secret of `obj` (so that a bad reference fails
// the deployment before anything changes) and records in obj.doc, for each,
// the encrypted file's bytes and sha256 (encryptedFile, read through `fetch`
// from the application's folder; the bytes already recorded when there is no
// fetcher) and the keyed digest of the value (valueDigest). Errors are
// prefixed with obj.where and name the field; a missing resolver is
// FAILED_PRECONDITION.
absl::Status PrepareSecretValues(HostObject& obj, const secrets::SecretResolver* resolver, const FileFetcher& fetch,
                                 const std::string& source_path);

// At Apply: resolves the secrets of a prepared `obj` again, checks that each
// value still has the digest recorded when the deployment was prepared
// (FAILED_PRECONDITION "changed since ..." otherwise: what runs must be what
// the record says), and puts the values into obj.process->env and
// obj.file->content (obj.doc is left as it is).
absl::Status ResolveSecretValues(HostObject& obj, const secrets::SecretResolver* resolver);

// `text` (a validate or reload command's output, quoted in an error) with
// every occurrence of `secret` and of each of its lines of 4 bytes or more
// replaced by "[secret]"; `text` as it is when `secret` is empty.
std::string RedactSecret(std::string text, const std::string& secret);

}  // namespace ferry::deployer::host
