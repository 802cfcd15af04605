#include "common/git/known_hosts.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ferry::git {
namespace {

std::string Unbase64(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return "";
  size_t pad = 0;
  if (!in.empty() && in.back() == '=') ++pad;
  if (in.size() > 1 && in[in.size() - 2] == '=') ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

bool HostMatches(const std::string& field, const std::string& name) {
  if (absl::StartsWith(field, "|1|")) {
    std::vector<std::string> parts = absl::StrSplit(field.substr(3), '|');
    if (parts.size() != 2) return false;
    std::string salt = Unbase64(parts[0]);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha1(), salt.data(), static_cast<int>(salt.size()), reinterpret_cast<const unsigned char*>(name.data()),
         name.size(), mac, &len);
    return Base64(std::string(reinterpret_cast<char*>(mac), len)) == parts[1];
  }
  for (absl::string_view listed : absl::StrSplit(field, ',')) {
    if (listed == name) return true;
  }
  return false;
}

}  // namespace

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

int SshPortOf(const std::string& url) {
  const std::string scheme = "ssh://";
  if (!absl::StartsWith(url, scheme)) return 22;
  std::string authority = url.substr(scheme.size(), url.find('/', scheme.size()) - scheme.size());
  size_t at = authority.rfind('@');
  if (at != std::string::npos) authority = authority.substr(at + 1);
  size_t colon = authority.rfind(':');
  int port = 22;
  if (colon != std::string::npos && authority.back() != ']' && !absl::SimpleAtoi(authority.substr(colon + 1), &port)) {
    return 22;
  }
  return port;
}

bool KnownHostsContains(const std::string& path, const std::string& host, int port, const std::string& key_base64) {
  const std::string name = port == 22 ? host : absl::StrCat("[", host, "]:", port);
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (f.empty() || f[0][0] == '#') continue;
    if (f[0][0] == '@') continue;  // @revoked / @cert-authority: never a plain match
    if (f.size() < 3) continue;
    if (HostMatches(f[0], name) && f[2] == key_base64) return true;
  }
  return false;
}

}  // namespace ferry::git
