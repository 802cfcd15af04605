#pragma once

#include <cstddef>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/common.pb.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

// The render of an application with render method ansible: its whole folder
// (playbook, roles, inventories, templates) as one object the ansible target
// runs, so that a plan carries exactly what is applied:
//   {"apiVersion": "ansible.ferry.dev/v1", "kind": "AnsiblePlaybook",
//    "metadata": {"name": <application id>},
//    "spec": {"playbook": "site.yml", "healthPlaybook": "health.yml" (when present),
//             "files": {<path in the folder>: [lines...] | {"base64": ...}}}}
// Text files are kept as lists of lines so that a plan's diff shows the
// changed lines; other files as base64. The playbook is site.yml, else
// playbook.yml. INVALID_ARGUMENT (a render failure naming the path) for
// neither, for a symlink leaving the folder, or for more than `max_bytes` of
// files.
absl::StatusOr<v1::Manifest> AnsibleBundle(const v1::Application& app, const std::vector<TreeEntry>& files,
                                           size_t max_bytes);

}  // namespace ferry::planner
