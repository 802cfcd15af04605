#pragma once

#include <string>

namespace ferry::git {

// Whether the OpenSSH known_hosts file `path` lists `host` on `port` (as
// "host" for 22, "[host]:port" otherwise, like OpenSSH) with the host key
// `key_base64` (the base64 wire-format key, as in the file). Understands
// plain, comma-separated and hashed ("|1|salt|hash") host fields; skips
// @revoked/@cert-authority lines and comments. False when the file cannot
// be read.
bool KnownHostsContains(const std::string& path, const std::string& host, int port, const std::string& key_base64);

// The port of an ssh:// URL ("ssh://[user@]host[:port]/path"); 22 for
// scp-style URLs and when none is given.
int SshPortOf(const std::string& url);

// Base64 (standard alphabet, padded) of `data`.
std::string Base64(const std::string& data);

}  // namespace ferry::git
