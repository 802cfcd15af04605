#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "tests/support/service_process.h"  // FreePort

namespace ferry::testing {

// A Git "remote" built with the real git CLI for tests: a bare repository
// (remote_path()) fed by pushes from a working clone. Every git call runs
// with a private HOME and fails the current test on error.
class GitTestRepo {
 public:
  explicit GitTestRepo(const std::string& dir);

  const std::string& remote_path() const { return remote_; }
  const std::string& work_path() const { return work_; }
  const std::string& home() const { return home_; }

  // Runs git in the working clone; returns trimmed output. `env` adds
  // variables (e.g. GNUPGHOME).
  std::string Git(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
  // Writes `files` (path -> content; "" content with "-" prefix deletes),
  // commits with `message` plus `commit_args` (e.g. "-S"), and returns the sha.
  std::string Commit(const std::map<std::string, std::string>& files, const std::string& message,
                     const std::vector<std::string>& commit_args = {}, const std::vector<std::string>& env = {});
  // Pushes `refspec` to the bare remote ("+main" forces).
  void Push(const std::string& refspec);

 private:
  std::string home_;
  std::string remote_;
  std::string work_;
};

// Serves a directory of bare repositories over smart HTTP through
// `git http-backend` (tests/repo-watcher/git_http_server.py). Killed on
// destruction.
class GitHttpServer {
 public:
  // With `basic_auth` ("user:password"), every request must carry it.
  explicit GitHttpServer(const std::string& root, const std::string& basic_auth = "");
  ~GitHttpServer();
  // http://127.0.0.1:<port>/<relative path>
  std::string UrlFor(const std::string& relative) const;
  bool ok() const { return port_ > 0; }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// `n` bytes that deflate cannot shrink (xorshift noise): a blob of that
// size costs its full size in a pack.
std::string IncompressibleBytes(size_t n);

}  // namespace ferry::testing
