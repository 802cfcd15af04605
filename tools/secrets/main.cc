// ferry-secrets: the deployer's secrets key, and values sealed to it for Git.
//
//   ferry-secrets keygen KEY_FILE        a new key (mode 0600); prints its public key
//   ferry-secrets public-key KEY_FILE    the public key of a key file
//   ferry-secrets seal PUBLIC_KEY [IN]   seals IN (or stdin) to a public key
//                                        (file or text); the sealed text on stdout
//
// The value to seal is read from a file or stdin, never from an argument
// (argv is readable by every user in /proc).

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <CLI/CLI.hpp>

#include "absl/strings/match.h"
#include "common/secrets/sealed_box.h"

namespace {

bool ReadText(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

int Fail(const std::string& what) {
  std::cerr << "ferry-secrets: " << what << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry-secrets: the deployer's secrets key, and values sealed to it for Git"};
  app.require_subcommand(1);
  std::string key_file, public_key, in_file;
  CLI::App* keygen = app.add_subcommand("keygen", "Write a new secrets key (mode 0600) and print its public key");
  keygen->add_option("KEY_FILE", key_file, "Where to write the key (must not exist)")->required();
  CLI::App* pub = app.add_subcommand("public-key", "Print the public key of a secrets key file");
  pub->add_option("KEY_FILE", key_file, "The deployer's --secrets-key-file")->required();
  CLI::App* seal = app.add_subcommand("seal", "Seal a value (a file, or stdin) to a deployer's public key");
  seal->add_option("PUBLIC_KEY", public_key, "The public key: a file holding it, or the text itself")->required();
  seal->add_option("IN", in_file, "The file to seal; stdin when absent or -");
  CLI11_PARSE(app, argc, argv);

  if (*keygen) {
    absl::StatusOr<ferry::secrets::SealedBoxKey> key = ferry::secrets::SealedBoxKey::Generate();
    if (!key.ok()) return Fail(std::string(key.status().message()));
    int fd = open(key_file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return Fail(key_file + ": " + strerror(errno));
    std::string text = key->SecretKeyText();
    bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ok = close(fd) == 0 && ok;
    if (!ok) return Fail(key_file + ": write failed");
    std::cout << key->PublicKeyText();
    return 0;
  }
  if (*pub) {
    std::string text;
    if (!ReadText(key_file, text)) return Fail(key_file + ": cannot be read");
    absl::StatusOr<ferry::secrets::SealedBoxKey> key = ferry::secrets::SealedBoxKey::FromText(text);
    if (!key.ok()) return Fail(key_file + " " + std::string(key.status().message()));
    std::cout << key->PublicKeyText();
    return 0;
  }
  std::string pk_text = public_key;
  if (!absl::StartsWith(public_key, ferry::secrets::kPublicKeyPrefix)) {
    if (!ReadText(public_key, pk_text)) return Fail(public_key + ": is neither a public key nor a readable file");
  }
  std::string value;
  if (in_file.empty() || in_file == "-") {
    value.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else if (!ReadText(in_file, value)) {
    return Fail(in_file + ": cannot be read");
  }
  absl::StatusOr<std::string> sealed = ferry::secrets::Seal(value, pk_text);
  if (!sealed.ok()) return Fail(std::string(sealed.status().message()));
  std::cout << *sealed;
  return 0;
}
