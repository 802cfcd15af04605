#include "services/deployer/host/workload_identity.h"

#include <grp.h>
#include <pwd.h>

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ferry::deployer::host {

absl::StatusOr<WorkloadIdentity> ResolveUserGroup(const std::string& user, const std::string& group,
                                                  const std::string& field) {
  WorkloadIdentity out;
  out.name = group.empty() ? user : absl::StrCat(user, ":", group);
  auto refuse = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", out.name, "\" ", why));
  };
  if (user.empty()) return refuse("names no user (a user name or a uid is required)");
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
      return refuse("names no user of this machine");
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
  return out;
}

absl::StatusOr<WorkloadIdentity> ResolveWorkloadUser(const std::string& spec) {
  if (spec.empty()) return WorkloadIdentity{};
  size_t colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  absl::StatusOr<WorkloadIdentity> out = ResolveUserGroup(user, group, "--workload-user");
  if (!out.ok()) return out.status();
  out->name = spec;
  if (*out->uid == 0 || out->gid == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--workload-user: \"", spec,
        "\" is root: workloads are not run as root through this flag (only through an environment's runAs with "
        "allowRoot, on a deployer started with --allow-root-workloads)"));
  }
  return out;
}

std::string IdentityKey(const WorkloadIdentity& who) {
  return who.uid.has_value() ? absl::StrCat(*who.uid, ":", who.gid) : "";
}

}  // namespace ferry::deployer::host
