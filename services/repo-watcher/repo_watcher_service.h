#pragma once

#include "ferry/v1/repo_watcher.grpc.pb.h"

namespace ferry::repo_watcher {

// gRPC handlers of ferry.v1.RepoWatcher. Every RPC returns UNIMPLEMENTED until
// the repo-watcher issue lands; the contract is served and visible over reflection.
class RepoWatcherService final : public v1::RepoWatcher::Service {};

}  // namespace ferry::repo_watcher
