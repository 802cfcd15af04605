#include "services/planner/renderer.h"

#include <stdlib.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <yaml-cpp/yaml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/crypto/sha256.h"
#include "common/process/run_process.h"
#include "common/process/tool_slot.h"
#include "common/status/status_macros.h"
#include "re2/re2.h"
#include "services/planner/ansible_bundle.h"
#include "services/planner/bounded_yaml_reader.h"
#include "services/planner/kustomize_batch.h"
#include "services/planner/manifest_parser.h"
#include "services/planner/render_failure.h"
#include "services/planner/terraform_plans.h"
#include "services/planner/repo_path.h"

namespace ferry::planner {
namespace {

namespace fs = std::filesystem;

constexpr const char* kKustomizationFiles[] = {"kustomization.yaml", "kustomization.yml", "Kustomization"};

bool IsManifestFile(const std::string& path) {
  std::string base = path.substr(path.rfind('/') + 1);
  if (base == "ferry.yaml" || base == "ferry.yml") return false;  // declarations, not objects
  return absl::EndsWith(base, ".yaml") || absl::EndsWith(base, ".yml") || absl::EndsWith(base, ".json");
}

std::string ToolVersion(const std::string& path, const std::vector<std::string>& args, const std::string& prefix,
                        const process::Sandbox& sandbox) {
  std::vector<std::string> argv = {path};
  argv.insert(argv.end(), args.begin(), args.end());
  process::ProcessOptions options;
  options.sandbox = sandbox;
  options.env = {"PATH=/usr/bin:/bin", "HOME=/tmp"};
  options.timeout = absl::Seconds(20);
  absl::StatusOr<process::ProcessResult> r = process::RunProcess(argv, options);
  if (!r.ok() || !r->succeeded()) return prefix + "unavailable";
  std::string out(absl::StripAsciiWhitespace(r->stdout_text));
  out = out.substr(0, out.find('\n'));
  return prefix + out;
}

// helm and kubectl are Go programs that start, render one application and
// exit: most of their CPU is start-up, and a good part of that is the
// garbage collector running over a heap that exit frees anyway (measured on
// kubectl kustomize of a small overlay: 29 ms of CPU with the defaults,
// 23 ms without collection). So collection is off until the heap nears a
// quarter of the sandbox's memory limit (GOMEMLIMIT is a soft limit: past
// it the collector runs as needed), which keeps a large render within
// --render-memory-limit-mb (an address-space limit, of which the Go runtime
// reserves some 300 MiB at start) at least as well as the default does.
// One OS thread each (GOMAXPROCS=1): renders run side by side already
// (--plan-concurrency), and a render is one goroutine's work. The output
// depends on none of these variables.
std::vector<std::string> GoRuntimeEnv(uint64_t memory_limit_mb) {
  const uint64_t heap_mb = memory_limit_mb == 0 ? 512 : std::max<uint64_t>(16, memory_limit_mb / 4);
  return {"GOGC=off", "GOMAXPROCS=1", absl::StrCat("GOMEMLIMIT=", heap_mb, "MiB")};
}

// A scratch folder removed on destruction.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Make(const std::string& root) {
    std::string tmpl = root + "/ferry-render-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) return absl::InternalError("cannot create scratch folder under " + root);
    return ScratchDir(tmpl);
  }
  ScratchDir(ScratchDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  ~ScratchDir() {
    if (path_.empty()) return;
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string p) : path_(std::move(p)) {}
  std::string path_;
};

// Turns a tool's stderr into a render failure naming the repository file and
// line when the message carries them.
absl::Status ToolFailure(const std::string& tool, const std::string& stderr_text, const std::string& scratch,
                         const std::string& chart_name, const std::string& app_path) {
  std::string msg(absl::StripAsciiWhitespace(absl::StrReplaceAll(stderr_text, {{scratch + "/", ""}, {scratch, ""}})));
  if (msg.size() > 2000) msg = msg.substr(0, 2000) + "...";
  std::string path;
  int line = 0;
  static const RE2 kPathLine("([A-Za-z0-9_.][A-Za-z0-9_./-]*\\.(?:ya?ml|tpl|json|txt)):([0-9]+)");
  static const RE2 kLine("line ([0-9]+)");
  static const RE2 kPath("([A-Za-z0-9_.][A-Za-z0-9_./-]*\\.(?:ya?ml|tpl|json))");
  std::string line_text;
  if (RE2::PartialMatch(msg, kPathLine, &path, &line_text)) {
    if (!absl::SimpleAtoi(line_text, &line)) line = 0;
  } else if (RE2::PartialMatch(msg, kPath, &path)) {
    if (RE2::PartialMatch(msg, kLine, &line_text) && !absl::SimpleAtoi(line_text, &line)) line = 0;
  }
  if (!chart_name.empty() && absl::StartsWith(path, chart_name + "/")) {
    path = app_path.empty() ? path.substr(chart_name.size() + 1) : app_path + path.substr(chart_name.size());
  }
  return RenderFailure(absl::StatusCode::kInvalidArgument, absl::StrCat(tool, " failed: ", msg), path, line);
}

std::vector<std::string> KustomizeRefs(const YAML::Node& k) {
  std::vector<std::string> refs;
  auto strings = [&](const char* key) {
    if (k[key] && k[key].IsSequence())
      for (const auto& n : k[key])
        if (n.IsScalar()) refs.push_back(n.Scalar());
  };
  for (const char* key : {"resources", "bases", "components", "crds", "patchesStrategicMerge", "generators",
                          "transformers", "configurations"})
    strings(key);
  for (const char* key : {"patches", "patchesJson6902"}) {
    if (k[key] && k[key].IsSequence())
      for (const auto& n : k[key])
        if (n.IsMap() && n["path"] && n["path"].IsScalar()) refs.push_back(n["path"].Scalar());
  }
  for (const char* key : {"configMapGenerator", "secretGenerator"}) {
    if (!k[key] || !k[key].IsSequence()) continue;
    for (const auto& gen : k[key]) {
      for (const char* list : {"files", "envs"}) {
        if (!gen.IsMap() || !gen[list] || !gen[list].IsSequence()) continue;
        for (const auto& f : gen[list]) {
          if (!f.IsScalar()) continue;
          std::string s = f.Scalar();
          size_t eq = s.find('=');
          refs.push_back(eq == std::string::npos ? s : s.substr(eq + 1));
        }
      }
    }
  }
  if (k["env"] && k["env"].IsScalar()) refs.push_back(k["env"].Scalar());
  return refs;
}

// A file read with yaml-cpp's node API (kustomization.yaml, Chart.yaml) is
// first read within the parse limits: the walks below follow aliases.
absl::Status WithinParseLimits(const std::string& text, const std::string& path, const ParseLimits& limits) {
  BoundedYamlReader reader(limits, limits.max_manifest_bytes);
  absl::StatusOr<nlohmann::json> read = reader.Read(text, 1);
  if (read.ok()) return absl::OkStatus();
  int line = reader.error_line();
  return RenderFailure(read.status().code(),
                       absl::StrCat(path, line > 0 ? absl::StrCat(":", line) : "", ": ", read.status().message()), path,
                       line);
}

// Writes one entry of the commit's tree under `repo_dir` (its folders made
// as needed): a file with its bytes and executable bit, or a symlink.
absl::Status WriteTreeEntry(const std::string& repo_dir, const std::string& path, const TreeEntry& e) {
  std::error_code ec;
  fs::path dest = fs::path(repo_dir) / path;
  fs::create_directories(dest.parent_path(), ec);
  if (e.type == v1::CONTENT_ENTRY_TYPE_FILE) {
    std::ofstream out(dest, std::ios::binary);
    out.write(e.data.data(), static_cast<std::streamsize>(e.data.size()));
    if (!out) return absl::InternalError("cannot write " + dest.string());
    if (e.mode == 0100755) fs::permissions(dest, fs::perms::owner_exec, fs::perm_options::add, ec);
  } else if (e.type == v1::CONTENT_ENTRY_TYPE_SYMLINK) {
    fs::create_symlink(e.symlink_target, dest, ec);
  }
  return absl::OkStatus();
}

bool CoveredBy(const std::string& path, const std::vector<std::string>& roots) {
  for (const auto& r : roots)
    if (IsUnderRepoPath(path, r)) return true;
  return false;
}

}  // namespace

Renderer::Renderer(RepoSource* repo, RendererOptions options) : repo_(repo), options_(std::move(options)) {}

process::Sandbox Renderer::ToolSandbox() const {
  process::Sandbox sandbox;
  sandbox.limits.address_space_bytes = options_.memory_limit_mb << 20;
  sandbox.limits.address_space_flag = "--render-memory-limit-mb";
  sandbox.limits.cpu_seconds = options_.cpu_seconds;
  sandbox.limits.cpu_flag = "--render-cpu-seconds";
  sandbox.limits.file_size_bytes = options_.file_size_limit_mb << 20;
  sandbox.limits.file_size_flag = "--render-file-size-limit-mb";
  sandbox.limits.open_files = options_.open_files;
  sandbox.isolate_network = options_.isolate_network;
  return sandbox;
}

std::string Renderer::SandboxStatus() const {
  auto limit = [](uint64_t v, const char* unit) { return v == 0 ? std::string("none") : absl::StrCat(v, unit); };
  std::string network;
  if (!options_.isolate_network) {
    network = "network not isolated (--render-isolate-network=false)";
  } else if (absl::Status available = process::NetworkIsolationAvailable(); available.ok()) {
    network = "no network (a network namespace of their own)";
  } else {
    network = absl::StrCat("network NOT isolated: ", available.message());
  }
  return absl::StrCat("memory ", limit(options_.memory_limit_mb, " MiB"), ", CPU ", limit(options_.cpu_seconds, " s"),
                      ", file size ", limit(options_.file_size_limit_mb, " MiB"), ", open files ",
                      limit(options_.open_files, ""), ", ", network);
}

std::string Renderer::Version(v1::RenderMethod method) {
  MutexLock lock(&mu_);
  switch (method) {
    case v1::RENDER_METHOD_PLAIN:
      return "plain/1";
    case v1::RENDER_METHOD_ANSIBLE:
      return "ansible-bundle/1";
    case v1::RENDER_METHOD_TERRAFORM:
      return "terraform-stack/1";
    case v1::RENDER_METHOD_KUSTOMIZE:
      if (kubectl_version_.empty())
        kubectl_version_ = ToolVersion(options_.kubectl_path, {"version", "--client"}, "kustomize/", ToolSandbox());
      return kubectl_version_;
    case v1::RENDER_METHOD_HELM:
      if (helm_version_.empty())
        helm_version_ = ToolVersion(options_.helm_path, {"version", "--short"}, "helm/", ToolSandbox());
      return helm_version_;
    default:
      return "unknown";
  }
}

absl::Status Renderer::CollectKustomizeInputs(const v1::Application& app, const std::string& commit,
                                              std::vector<std::string>& roots) {
  std::deque<std::string> queue = {app.path()};
  std::set<std::string> visited;
  while (!queue.empty()) {
    std::string dir = queue.front();
    queue.pop_front();
    if (!visited.insert(dir).second) continue;
    ASSIGN_OR_RETURN(std::vector<TreeEntry> listing, repo_->ReadTree(app.repository_id(), commit, dir, true));
    std::string kfile;
    for (const char* name : kKustomizationFiles) {
      std::string candidate = dir.empty() ? name : dir + "/" + name;
      for (const auto& e : listing)
        if (e.path == candidate) kfile = candidate;
      if (!kfile.empty()) break;
    }
    if (kfile.empty()) {
      if (dir == app.path())
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat("no kustomization.yaml in \"", dir, "\" (render method kustomize)"), dir);
      continue;  // a plain folder referenced as a resource; kustomize reports it
    }
    ASSIGN_OR_RETURN(std::vector<TreeEntry> file, repo_->ReadTree(app.repository_id(), commit, kfile, false));
    if (file.empty()) continue;
    RETURN_IF_ERROR(WithinParseLimits(file.front().data, kfile, options_.parse_limits));
    YAML::Node k;
    try {
      k = YAML::Load(file.front().data);
    } catch (const YAML::Exception& e) {
      int line = e.mark.is_null() ? 0 : e.mark.line + 1;
      return RenderFailure(absl::StatusCode::kInvalidArgument, absl::StrCat(kfile, ":", line, ": malformed YAML: ", e.msg),
                           kfile, line);
    }
    if (!k.IsMap()) continue;
    for (const std::string& ref : KustomizeRefs(k)) {
      if (absl::StrContains(ref, "://") || absl::StartsWith(ref, "github.com/") || absl::StartsWith(ref, "git@")) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat(kfile, ": remote resource \"", ref,
                                          "\" is not supported; vendor it into the repository"),
                             kfile);
      }
      absl::StatusOr<std::string> resolved = ResolveRepoPath(dir, ref);
      if (!resolved.ok()) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat(kfile, ": path escapes the repository: ", resolved.status().message()), kfile);
      }
      bool is_dir = false;
      absl::StatusOr<std::vector<TreeEntry>> target = repo_->ReadTree(app.repository_id(), commit, *resolved, true);
      if (target.ok()) {
        is_dir = !(target->size() == 1 && target->front().path == *resolved);
      } else if (!absl::IsNotFound(target.status())) {
        return target.status();
      }
      if (!CoveredBy(*resolved, roots)) roots.push_back(*resolved);
      if (is_dir) queue.push_back(*resolved);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<RenderInputs> Renderer::CollectInputs(const v1::Application& app, const std::string& commit,
                                                     int64_t listing_data_bytes) {
  RenderInputs inputs;
  inputs.roots.push_back(app.path());
  switch (app.render_method()) {
    case v1::RENDER_METHOD_PLAIN:
    case v1::RENDER_METHOD_ANSIBLE:
    case v1::RENDER_METHOD_TERRAFORM:
      break;
    case v1::RENDER_METHOD_KUSTOMIZE:
      RETURN_IF_ERROR(CollectKustomizeInputs(app, commit, inputs.roots));
      break;
    case v1::RENDER_METHOD_HELM:
      for (const std::string& values : app.helm().values_files()) {
        absl::StatusOr<std::string> resolved = ResolveRepoPath(app.path(), values);
        if (!resolved.ok()) {
          return RenderFailure(absl::StatusCode::kInvalidArgument,
                               absl::StrCat("helm.values_files: path escapes the repository: ", resolved.status().message()),
                               values);
        }
        if (!CoveredBy(*resolved, inputs.roots)) inputs.roots.push_back(*resolved);
      }
      break;
    default:
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("unknown render method ", static_cast<int>(app.render_method()),
                                        " (render_method must be plain, kustomize, helm, ansible or terraform)"));
  }
  std::string key_material = absl::StrCat(Version(app.render_method()), "\n", app.render_method(), "\n", app.id(), "\n",
                                          app.path(), "\n", app.helm().SerializeAsString(), "\n");
  inputs.entries_have_data = listing_data_bytes > 0;
  for (const std::string& root : inputs.roots) {
    absl::StatusOr<RepoSource::Listing> listing =
        repo_->ReadListing(app.repository_id(), commit, root, listing_data_bytes);
    if (!listing.ok()) {
      if (absl::IsNotFound(listing.status())) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat("path \"", root, "\" does not exist at commit ", commit.substr(0, 12)), root);
      }
      return listing.status();
    }
    if (!listing->with_data) inputs.entries_have_data = false;
    for (TreeEntry& e : listing->entries) {
      absl::StrAppend(&key_material, e.path, "\t", e.type, "\t", e.mode, "\t", e.blob_sha, "\t", e.symlink_target, "\n");
      inputs.entries.push_back(std::move(e));
    }
  }
  inputs.cache_key = "sha256:" + Sha256Hex(key_material);
  return inputs;
}

absl::StatusOr<std::vector<TreeEntry>> Renderer::ReadRoots(const v1::Application& app, const std::string& commit,
                                                           const RenderInputs& inputs) {
  std::vector<TreeEntry> files;
  auto check = [&](const TreeEntry& e) -> absl::Status {
    if (e.type != v1::CONTENT_ENTRY_TYPE_SYMLINK) return absl::OkStatus();
    absl::StatusOr<std::string> target = ResolveRepoPath(RepoDirName(e.path), e.symlink_target);
    if (target.ok()) return absl::OkStatus();
    return RenderFailure(absl::StatusCode::kInvalidArgument,
                         absl::StrCat("path escapes the repository: symlink ", e.path, " -> ", e.symlink_target), e.path);
  };
  if (inputs.entries_have_data) {
    // Read with the listing already.
    for (const TreeEntry& e : inputs.entries) {
      RETURN_IF_ERROR(check(e));
      files.push_back(e);
    }
    return files;
  }
  for (const std::string& root : inputs.roots) {
    absl::StatusOr<std::vector<TreeEntry>> tree = repo_->ReadTree(app.repository_id(), commit, root, false);
    if (!tree.ok()) {
      if (absl::IsNotFound(tree.status()) && root != app.path()) continue;  // a missing kustomize ref: the tool says so
      if (absl::IsResourceExhausted(tree.status())) {
        return RenderFailure(absl::StatusCode::kResourceExhausted, std::string(tree.status().message()), root);
      }
      return tree.status();
    }
    for (TreeEntry& e : *tree) {
      RETURN_IF_ERROR(check(e));
      files.push_back(std::move(e));
    }
  }
  return files;
}

absl::StatusOr<std::vector<v1::Manifest>> Renderer::RenderPlain(const v1::Application& app,
                                                                const std::vector<TreeEntry>& files) {
  std::map<std::string, const TreeEntry*> by_path;
  for (const auto& e : files) by_path[e.path] = &e;
  std::vector<v1::Manifest> out;
  ManifestBudget budget(options_.parse_limits);  // the application's files share it
  for (const auto& [path, entry] : by_path) {
    if (!IsUnderRepoPath(path, app.path()) || !IsManifestFile(path)) continue;
    const TreeEntry* file = entry;
    if (file->type == v1::CONTENT_ENTRY_TYPE_SYMLINK) {
      absl::StatusOr<std::string> target = ResolveRepoPath(RepoDirName(path), file->symlink_target);
      auto it = target.ok() ? by_path.find(*target) : by_path.end();
      if (it == by_path.end() || it->second->type != v1::CONTENT_ENTRY_TYPE_FILE) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat("symlink ", path, " -> ", file->symlink_target,
                                          " does not point to a file of the application folder"),
                             path);
      }
      file = it->second;
    }
    if (file->type != v1::CONTENT_ENTRY_TYPE_FILE) continue;
    ASSIGN_OR_RETURN(std::vector<v1::Manifest> objects, ParseManifests(file->data, path, budget));
    for (auto& m : objects) out.push_back(std::move(m));
  }
  return out;
}

process::ProcessOptions Renderer::ToolOptions(const std::string& repo_dir, const std::string& home) const {
  process::ProcessOptions sub;
  sub.working_dir = repo_dir;
  sub.timeout = options_.timeout;
  sub.max_stdout_bytes = options_.max_output_bytes;
  sub.max_stderr_bytes = 64 << 10;
  sub.kill_at_stdout_limit = true;  // too much output fails the render; no need to read on
  sub.sandbox = ToolSandbox();
  sub.env = {"PATH=/usr/bin:/bin", "HOME=" + home, "HELM_CACHE_HOME=" + home + "/cache",
             "HELM_CONFIG_HOME=" + home + "/config", "HELM_DATA_HOME=" + home + "/data", "KUBECONFIG=/dev/null",
             "LANG=C"};
  for (std::string& v : GoRuntimeEnv(options_.memory_limit_mb)) sub.env.push_back(std::move(v));
  return sub;
}

absl::StatusOr<std::vector<v1::Manifest>> Renderer::RenderWithTool(const v1::Application& app,
                                                                   const std::vector<TreeEntry>& files) {
  ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Make(options_.scratch_root));
  const std::string repo_dir = scratch.path() + "/repo";
  const std::string home = scratch.path() + "/home";
  std::error_code ec;
  fs::create_directories(repo_dir, ec);
  fs::create_directories(home, ec);
  std::string chart_name;
  for (const TreeEntry& e : files) {
    RETURN_IF_ERROR(WriteTreeEntry(repo_dir, e.path, e));
    if (e.type == v1::CONTENT_ENTRY_TYPE_FILE) {
      if (app.render_method() == v1::RENDER_METHOD_HELM &&
          e.path == (app.path().empty() ? "Chart.yaml" : app.path() + "/Chart.yaml")) {
        RETURN_IF_ERROR(WithinParseLimits(e.data, e.path, options_.parse_limits));
        try {
          YAML::Node chart = YAML::Load(e.data);
          if (chart["name"] && chart["name"].IsScalar()) chart_name = chart["name"].Scalar();
        } catch (const YAML::Exception& ex) {
          int line = ex.mark.is_null() ? 0 : ex.mark.line + 1;
          return RenderFailure(absl::StatusCode::kInvalidArgument,
                               absl::StrCat(e.path, ":", line, ": malformed YAML: ", ex.msg), e.path, line);
        }
      }
    }
  }
  const std::string app_dir = app.path().empty() ? repo_dir : repo_dir + "/" + app.path();
  process::ProcessOptions sub = ToolOptions(repo_dir, home);
  std::vector<std::string> argv;
  std::string tool;
  if (app.render_method() == v1::RENDER_METHOD_KUSTOMIZE) {
    tool = "kubectl kustomize";
    argv = {options_.kubectl_path, "kustomize", app_dir};
  } else {
    tool = "helm template";
    if (chart_name.empty()) {
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("no Chart.yaml with a name in \"", app.path(), "\" (render method helm)"),
                           app.path().empty() ? "Chart.yaml" : app.path() + "/Chart.yaml");
    }
    std::string release = app.helm().release_name().empty() ? app.id() : app.helm().release_name();
    argv = {options_.helm_path, "template", release, app_dir};
    if (!app.helm().namespace_().empty()) {
      argv.push_back("--namespace");
      argv.push_back(app.helm().namespace_());
    }
    for (const std::string& values : app.helm().values_files()) {
      ASSIGN_OR_RETURN(std::string resolved, ResolveRepoPath(app.path(), values));
      if (!fs::exists(repo_dir + "/" + resolved)) {
        return RenderFailure(absl::StatusCode::kInvalidArgument,
                             absl::StrCat("helm.values_files: \"", resolved, "\" does not exist"), resolved);
      }
      argv.push_back("--values");
      argv.push_back(repo_dir + "/" + resolved);
    }
  }
  if (!fs::exists(argv[0])) {
    return absl::FailedPreconditionError(absl::StrCat(tool, ": ", argv[0], " not found (scripts/install-k8s-tools installs it)"));
  }
  absl::StatusOr<process::ProcessResult> result = [&] {
    process::ToolSlot slot(options_.tool_slots);
    return process::RunProcess(argv, sub);
  }();
  if (!result.ok()) return result.status();
  if (!result->limit_exceeded.empty()) {
    return RenderFailure(absl::StatusCode::kResourceExhausted,
                         absl::StrCat(tool, " of \"", app.path(), "\": ", argv[0], " ran into ",
                                      result->limit_exceeded, " and was stopped"),
                         app.path());
  }
  if (result->timed_out) {
    return RenderFailure(absl::StatusCode::kDeadlineExceeded,
                         absl::StrCat(tool, " of \"", app.path(), "\": ", argv[0], " did not finish within ",
                                      absl::FormatDuration(sub.timeout), " and was killed"),
                         app.path());
  }
  if (result->stdout_truncated) {
    return RenderFailure(absl::StatusCode::kResourceExhausted,
                         absl::StrCat(tool, " of \"", app.path(), "\": ", argv[0], " wrote more than ",
                                      sub.max_stdout_bytes, " bytes and was killed"),
                         app.path());
  }
  if (!result->succeeded()) return ToolFailure(tool, result->stderr_text, repo_dir, chart_name, app.path());
  // Objects of `kubectl kustomize` come from the kustomization file: their
  // source is that file, so that paths relative to "the manifest's folder"
  // resolve in the application folder.
  std::string source = app.path();
  for (const char* name : kKustomizationFiles) {
    std::string candidate = app.path().empty() ? name : app.path() + "/" + name;
    if (fs::exists(repo_dir + "/" + candidate)) {
      source = candidate;
      break;
    }
  }
  // The output is the whole application in one stream: one document per
  // object, bounded by the objects limit (named first) rather than the
  // per-file one.
  ManifestBudget budget(options_.parse_limits);
  budget.limits.max_documents = std::max(budget.limits.max_documents, budget.limits.max_objects + 1);
  absl::StatusOr<std::vector<v1::Manifest>> objects = ParseManifests(result->stdout_text, source, budget);
  if (!objects.ok()) return objects.status();
  for (v1::Manifest& m : *objects) {
    // helm's "# Source: <chart>/templates/x.yaml" -> repository path
    if (!chart_name.empty() && absl::StartsWith(m.source_path(), chart_name + "/")) {
      std::string rest = m.source_path().substr(chart_name.size() + 1);
      m.set_source_path(app.path().empty() ? rest : app.path() + "/" + rest);
    }
  }
  return objects;
}

std::vector<absl::StatusOr<std::vector<v1::Manifest>>> Renderer::RenderBatch(const std::vector<BatchItem>& items,
                                                                              const std::string& commit) {
  std::vector<absl::StatusOr<std::vector<v1::Manifest>>> results(items.size(), std::vector<v1::Manifest>());
  std::vector<size_t> members, alone;
  std::map<std::string, TreeEntry> files;  // the union of the members' inputs (one commit: equal paths, equal entries)
  for (size_t i = 0; i < items.size(); ++i) {
    const BatchItem& item = items[i];
    if (items.size() < 2 || item.app->render_method() != v1::RENDER_METHOD_KUSTOMIZE) {
      alone.push_back(i);
      continue;
    }
    absl::StatusOr<std::vector<TreeEntry>> read = ReadRoots(*item.app, commit, *item.inputs);
    if (!read.ok() || !BatchObstacle(*read, options_.parse_limits).empty()) {
      alone.push_back(i);
      continue;
    }
    members.push_back(i);
    for (TreeEntry& e : *read) files.emplace(e.path, std::move(e));
  }
  if (members.size() < 2) {
    alone.insert(alone.end(), members.begin(), members.end());
    members.clear();
  }
  if (!members.empty()) {
    absl::StatusOr<std::vector<std::vector<v1::Manifest>>> split = RunBatch(items, members, files);
    for (size_t j = 0; j < members.size(); ++j) {
      const size_t i = members[j];
      if (!split.ok()) {
        alone.push_back(i);
        continue;
      }
      std::vector<v1::Manifest>& objects = (*split)[j];
      // Within the application's own budgets, no reference kustomize
      // resolves to a namespace, no duplicate: else it renders alone (and
      // fails as it would).
      int64_t bytes = 0;
      bool ok = static_cast<int>(objects.size()) <= options_.parse_limits.max_objects;
      for (const v1::Manifest& m : objects) {
        bytes += static_cast<int64_t>(m.json().size());
        if (MapReferrer(m.object())) ok = false;
      }
      if (!ok || bytes > options_.parse_limits.max_manifest_bytes || !CheckAndSortManifests(objects).ok()) {
        alone.push_back(i);
        continue;
      }
      const v1::Application& app = *items[i].app;
      std::string source = app.path();
      for (const char* name : kKustomizationFiles) {
        std::string candidate = app.path().empty() ? name : app.path() + "/" + name;
        if (files.count(candidate)) {
          source = candidate;
          break;
        }
      }
      for (v1::Manifest& m : objects) m.set_source_path(source);
      results[i] = std::move(objects);
    }
  }
  for (size_t i : alone) results[i] = Render(*items[i].app, commit, *items[i].inputs);
  return results;
}

absl::StatusOr<std::vector<std::vector<v1::Manifest>>> Renderer::RunBatch(const std::vector<BatchItem>& items,
                                                                          const std::vector<size_t>& members,
                                                                          const std::map<std::string, TreeEntry>& files) {
  ASSIGN_OR_RETURN(ScratchDir scratch, ScratchDir::Make(options_.scratch_root));
  const std::string repo_dir = scratch.path() + "/repo";
  const std::string batch_dir = scratch.path() + "/batch";
  const std::string home = scratch.path() + "/home";
  std::error_code ec;
  fs::create_directories(repo_dir, ec);
  fs::create_directories(home, ec);
  for (const auto& [path, e] : files) RETURN_IF_ERROR(WriteTreeEntry(repo_dir, path, e));
  std::vector<std::string> app_paths;
  for (size_t i : members) app_paths.push_back(items[i].app->path());
  for (const auto& [path, text] : BatchKustomizations(app_paths, "../../repo")) {
    fs::path dest = fs::path(batch_dir) / path;
    fs::create_directories(dest.parent_path(), ec);
    std::ofstream out(dest, std::ios::binary);
    out << text;
    if (!out) return absl::InternalError("cannot write " + dest.string());
  }
  if (!fs::exists(options_.kubectl_path)) return absl::FailedPreconditionError(options_.kubectl_path + " not found");
  process::ProcessOptions sub = ToolOptions(repo_dir, home);
  absl::StatusOr<process::ProcessResult> ran = [&] {
    process::ToolSlot slot(options_.tool_slots);
    return process::RunProcess({options_.kubectl_path, "kustomize", batch_dir}, sub);
  }();
  ASSIGN_OR_RETURN(process::ProcessResult result, std::move(ran));
  if (!result.limit_exceeded.empty() || result.timed_out || result.stdout_truncated || !result.succeeded())
    return absl::UnknownError("the batch did not render");
  // The members' budgets together; each member's own are checked after.
  ManifestBudget budget(options_.parse_limits);
  const int64_t n = static_cast<int64_t>(members.size());
  budget.limits.max_objects = static_cast<int>(std::min<int64_t>(budget.limits.max_objects * n, 1 << 30));
  budget.limits.max_manifest_bytes *= n;
  budget.limits.max_documents = std::max(budget.limits.max_documents, budget.limits.max_objects + 1);
  ASSIGN_OR_RETURN(std::vector<v1::Manifest> objects, ParseManifests(result.stdout_text, "", budget));
  return SplitBatchOutput(std::move(objects), members.size());
}

absl::StatusOr<std::vector<v1::Manifest>> Renderer::Render(const v1::Application& app, const std::string& commit,
                                                           const RenderInputs& inputs) {
  ASSIGN_OR_RETURN(std::vector<TreeEntry> files, ReadRoots(app, commit, inputs));
  absl::StatusOr<std::vector<v1::Manifest>> manifests;
  switch (app.render_method()) {
    case v1::RENDER_METHOD_PLAIN:
      manifests = RenderPlain(app, files);
      break;
    case v1::RENDER_METHOD_KUSTOMIZE:
    case v1::RENDER_METHOD_HELM:
      manifests = RenderWithTool(app, files);
      break;
    case v1::RENDER_METHOD_ANSIBLE: {
      absl::StatusOr<v1::Manifest> bundle = AnsibleBundle(app, files, static_cast<size_t>(options_.parse_limits.max_manifest_bytes));
      if (!bundle.ok()) return bundle.status();
      manifests = std::vector<v1::Manifest>{*std::move(bundle)};
      break;
    }
    case v1::RENDER_METHOD_TERRAFORM: {
      // The folder as one Stack; the environment's variables are put in by
      // the plan maker (TerraformVariablesFor): a render is per application.
      absl::StatusOr<v1::Manifest> stack = RenderTerraformStack(app.id(), app.path(), files, {}, nlohmann::json());
      if (!stack.ok()) return stack.status();
      manifests = std::vector<v1::Manifest>{*std::move(stack)};
      break;
    }
    default:
      return RenderFailure(absl::StatusCode::kInvalidArgument,
                           absl::StrCat("unknown render method ", static_cast<int>(app.render_method()),
                                        " (render_method must be plain, kustomize, helm, ansible or terraform)"));
  }
  if (!manifests.ok()) return manifests.status();
  RETURN_IF_ERROR(CheckAndSortManifests(*manifests));
  return manifests;
}

}  // namespace ferry::planner
