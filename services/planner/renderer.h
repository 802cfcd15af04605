#pragma once

#include <semaphore>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/concurrency/mutex.h"
#include "common/process/run_process.h"
#include "ferry/v1/planner.pb.h"
#include "services/planner/parse_limits.h"
#include "services/planner/repo_source.h"

namespace ferry::planner {

struct RendererOptions {
  std::string helm_path;     // absolute path of helm
  std::string kubectl_path;  // absolute path of kubectl
  absl::Duration timeout = absl::Seconds(90);
  size_t max_output_bytes = 64 << 20;
  std::string scratch_root = "/tmp";  // scratch folders are made (and removed) under it
  // The tools' sandbox (common/process ResourceLimits; 0 = no limit). The
  // memory limit is address space: helm and kubectl need some 300 MiB of it
  // to start.
  uint64_t memory_limit_mb = 1024;    // --render-memory-limit-mb
  uint64_t cpu_seconds = 60;          // --render-cpu-seconds
  uint64_t file_size_limit_mb = 256;  // --render-file-size-limit-mb
  uint64_t open_files = 1024;         // --render-open-files
  bool isolate_network = true;        // --render-isolate-network
  ParseLimits parse_limits;           // reading files and tool output into objects
  // Tool runs (helm, kubectl kustomize) at once, shared with the check
  // runner (--tool-processes); null: not bounded here.
  std::counting_semaphore<>* tool_slots = nullptr;
};

// Everything one render of an application reads: the listing of its roots,
// with the files' data when asked for and small (then the render reads
// nothing more), else without.
struct RenderInputs {
  std::vector<std::string> roots;  // repository paths read; the application path first
  std::vector<TreeEntry> entries;  // every entry under the roots
  bool entries_have_data = false;  // every root's entries came with their data
  std::string cache_key;           // content hash of the inputs, options and renderer version
};

// The files of an application's root, at most this many bytes for their
// data to come with its listing when asked for (issue #23: one ReadContent
// stream per application planned; a larger folder is listed, then read).
inline constexpr int64_t kListingDataBytes = int64_t{64} << 10;

// Renders an application's folder at a commit into Kubernetes-shaped
// objects: plain YAML, `kubectl kustomize` or `helm template`, the tools run
// as subprocesses in a scratch folder with a timeout, bounded output, a
// clean environment, rlimits (memory, CPU, file size, open files) and no
// network where the kernel allows a network namespace (SandboxStatus). A
// tool that hits a limit fails the render naming the limit and its flag. Errors in the inputs are render failures
// (render_failure.h) naming the file and line; repo-watcher errors pass
// through unchanged. Thread-safe.
class Renderer {
 public:
  Renderer(RepoSource* repo, RendererOptions options);

  // "plain/1", "kustomize/<kubectl version>", "helm/<helm version>".
  std::string Version(v1::RenderMethod method);

  // How the tools are confined: the limits and whether they run without a
  // network (and why not, when the kernel refuses it).
  std::string SandboxStatus() const;

  // Lists the inputs: the application folder, plus Kustomize bases and
  // resources and Helm values files outside it. With `listing_data_bytes`
  // (kListingDataBytes) a root whose files total at most that comes with
  // their data, so that Render reads nothing more: for a caller that will
  // most likely render (the render cache cannot have it), not for one that
  // mostly finds the render cached or needs only the listing.
  absl::StatusOr<RenderInputs> CollectInputs(const v1::Application& app, const std::string& commit,
                                             int64_t listing_data_bytes = 0);

  // Renders from collected inputs. The manifests are checked for duplicate
  // identities and sorted by identity.
  absl::StatusOr<std::vector<v1::Manifest>> Render(const v1::Application& app, const std::string& commit,
                                                   const RenderInputs& inputs);

  // Several applications at one commit, each result exactly what Render
  // returns for it: Kustomize applications that kustomize_batch.h allows
  // are rendered together in one kubectl run (most of a run's CPU is
  // kubectl's start-up), the others, and every member of a batch that
  // fails, alone. Pointers must outlive the call.
  struct BatchItem {
    const v1::Application* app;
    const RenderInputs* inputs;
  };
  std::vector<absl::StatusOr<std::vector<v1::Manifest>>> RenderBatch(const std::vector<BatchItem>& items,
                                                                     const std::string& commit);

 private:
  absl::StatusOr<std::vector<TreeEntry>> ReadRoots(const v1::Application& app, const std::string& commit,
                                                   const RenderInputs& inputs);
  absl::StatusOr<std::vector<v1::Manifest>> RenderPlain(const v1::Application& app,
                                                        const std::vector<TreeEntry>& files);
  absl::StatusOr<std::vector<v1::Manifest>> RenderWithTool(const v1::Application& app,
                                                           const std::vector<TreeEntry>& files);
  absl::Status CollectKustomizeInputs(const v1::Application& app, const std::string& commit,
                                      std::vector<std::string>& roots);

  process::Sandbox ToolSandbox() const;
  process::ProcessOptions ToolOptions(const std::string& repo_dir, const std::string& home) const;
  absl::StatusOr<std::vector<std::vector<v1::Manifest>>> RunBatch(const std::vector<BatchItem>& items,
                                                                  const std::vector<size_t>& members,
                                                                  const std::map<std::string, TreeEntry>& files);

  RepoSource* repo_;
  const RendererOptions options_;
  Mutex mu_;
  std::string helm_version_ ABSL_GUARDED_BY(mu_);  // "" until asked
  std::string kubectl_version_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ferry::planner
