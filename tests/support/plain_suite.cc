#include "tests/support/plain_suite.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"

namespace ferry::testing {

std::vector<ServiceProcess*> PlainServices::All() const {
  std::vector<ServiceProcess*> out;
  for (ServiceProcess* p : {audit.get(), repo_watcher.get(), planner.get(), deployer.get()})
    if (p != nullptr) out.push_back(p);
  return out;
}

bool StartPlainServices(const std::string& database_url, const std::string& dir, const PlainSuiteFlags& flags,
                        PlainServices* out) {
  for (const char* s : {"audit", "repo-watcher", "planner", "deployer"})
    out->address[s] = absl::StrCat("127.0.0.1:", FreePort());
  auto start = [&](const std::string& svc, std::vector<std::string> wiring, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"--database-url=" + database_url, "--audit-address=" + out->address["audit"],
                                     "--grpc-address=" + out->address[svc]};
    args.insert(args.end(), wiring.begin(), wiring.end());
    args.insert(args.end(), extra.begin(), extra.end());
    auto p = ServiceProcess::Start("ferry-" + svc, args, absl::Seconds(60));
    EXPECT_TRUE(p.ok()) << svc << ": " << p.status();
    return p.ok() ? std::move(*p) : nullptr;
  };
  out->audit = start("audit", {"--checkpoint-key-file=" + dir + "/checkpoint.pem"}, flags.audit);
  if (out->audit == nullptr) return false;
  out->repo_watcher = start("repo-watcher", {"--cache-dir=" + dir + "/cache"}, flags.repo_watcher);
  if (out->repo_watcher == nullptr) return false;
  out->planner = start("planner",
                       {"--repo-watcher-address=" + out->address["repo-watcher"],
                        "--deployer-address=" + out->address["deployer"]},
                       flags.planner);
  if (out->planner == nullptr) return false;
  if (!flags.start_deployer) return true;
  out->deployer = start("deployer",
                        {"--planner-address=" + out->address["planner"],
                         "--repo-watcher-address=" + out->address["repo-watcher"]},
                        flags.deployer);
  return out->deployer != nullptr;
}

std::shared_ptr<grpc::Channel> PlainChannel(const ServiceProcess& p) {
  return grpc::CreateChannel(p.grpc_target(), grpc::InsecureChannelCredentials());
}

}  // namespace ferry::testing
