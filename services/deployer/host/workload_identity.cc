#include "services/deployer/host/workload_identity.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::deployer::host {

absl::StatusOr<WorkloadIdentity> ResolveWorkloadUser(const std::string& spec) {
  WorkloadIdentity out;
  out.name = spec;
  if (spec.empty()) return out;
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("--workload-user: \"", spec, "\" ", why));
  };
  size_t colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  std::vector<char> buf(16384);
  struct passwd pw;
  struct passwd* pwp = nullptr;
  uint32_t num = 0;
  if (absl::SimpleAtoi(user, &num)) {
    out.uid = static_cast<uid_t>(num);
    if (getpwuid_r(*out.uid, &pw, buf.data(), buf.size(), &pwp) == 0 && pwp != nullptr) out.gid = pw.pw_gid;
    else if (group.empty()) out.gid = static_cast<gid_t>(num);
  } else {
    if (getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &pwp) != 0 || pwp == nullptr) {
      return refuse(absl::StrCat("names no user of this machine"));
    }
    out.uid = pw.pw_uid;
    out.gid = pw.pw_gid;
  }
  if (!group.empty()) {
    if (absl::SimpleAtoi(group, &num)) {
      out.gid = static_cast<gid_t>(num);
    } else {
      struct group gr;
      struct group* grp = nullptr;
      if (getgrnam_r(group.c_str(), &gr, buf.data(), buf.size(), &grp) != 0 || grp == nullptr) {
        return refuse("names no group of this machine");
      }
      out.gid = grp->gr_gid;
    }
  }
  if (*out.uid == 0 || out.gid == 0) {
    return refuse("is root: workloads are not run as root through this flag (leave it unset to run them as the "
                  "deployer's own uid)");
  }
  return out;
}

}  // namespace ferry::deployer::host
