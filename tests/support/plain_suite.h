#pragma once

// The four Ferry services as most integration tests run them: each on a
// free loopback port, in development mode (ServiceProcess's plaintext and
// no-auth defaults), on one test database, wired to each other. Tests of
// access control use tests/integration/secure_suite.h instead.

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/service_process.h"

namespace ferry::testing {

// Flags on top of the wiring StartPlainServices gives each service.
struct PlainSuiteFlags {
  std::vector<std::string> audit, repo_watcher, planner, deployer;
  bool start_deployer = true;  // false: the planner still dials its address
};

struct PlainServices {
  std::unique_ptr<ServiceProcess> audit, repo_watcher, planner, deployer;
  std::map<std::string, std::string> address;  // "planner" -> "127.0.0.1:<port>"

  // The services that run, in start order.
  std::vector<ServiceProcess*> All() const;
};

// Starts audit (checkpoint key in <dir>/checkpoint.pem), repo-watcher (Git
// cache in <dir>/cache), planner (with the repo-watcher's and deployer's
// addresses) and deployer (with the planner's and repo-watcher's), each with
// --database-url and --audit-address and its own `flags`. Ports are chosen
// before any starts, so a service can be given a peer that is not up yet.
// False (with test failures naming the service) when one does not come up.
bool StartPlainServices(const std::string& database_url, const std::string& dir, const PlainSuiteFlags& flags,
                        PlainServices* out);

// A plaintext channel to `p` (development mode).
std::shared_ptr<grpc::Channel> PlainChannel(const ServiceProcess& p);

}  // namespace ferry::testing
