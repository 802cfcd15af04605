#include "services/planner/declarative_config.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <set>

#include <yaml-cpp/yaml.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/planner/bounded_yaml_reader.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

// Thrown inside the parser only, caught at its entry point.
struct ConfigError {
  std::string message;
};

class Parser {
 public:
  Parser(std::string file, SyncWindowLimits windows) : file_(std::move(file)), windows_(windows) {}

  [[noreturn]] void Fail(const YAML::Node& node, const std::string& field, const std::string& problem) const {
    int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    throw ConfigError{absl::StrCat(file_, line > 0 ? absl::StrCat(":", line) : "", ": ", field, ": ", problem)};
  }

  void Keys(const YAML::Node& node, const std::string& field, std::set<std::string> allowed) const {
    if (!node.IsMap()) Fail(node, field, "must be a mapping");
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      if (!allowed.count(key)) Fail(kv.first, field + "." + key, "unknown key");
    }
  }

  std::string Str(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) Fail(node, field, "must be a string");
    return node.Scalar();
  }

  bool Bool(const YAML::Node& node, const std::string& field) const {
    std::string s = Str(node, field);
    if (s == "true") return true;
    if (s == "false") return false;
    Fail(node, field, "must be true or false");
  }

  std::vector<std::string> StrList(const YAML::Node& node, const std::string& field) const {
    std::vector<std::string> out;
    if (node.IsScalar()) return {node.Scalar()};
    if (!node.IsSequence()) Fail(node, field, "must be a list of strings");
    for (size_t i = 0; i < node.size(); ++i) out.push_back(Str(node[i], absl::StrCat(field, "[", i, "]")));
    return out;
  }

  google::protobuf::Duration Duration(const YAML::Node& node, const std::string& field) const {
    absl::Duration d;
    if (!absl::ParseDuration(Str(node, field), &d) || d < absl::ZeroDuration())
      Fail(node, field, "must be a duration such as 90s, 5m or 8h");
    google::protobuf::Duration out;
    out.set_seconds(absl::ToInt64Seconds(d));
    return out;
  }

  // kubernetes: {kubeconfig, context, namespace} or {inCluster: true, namespace}.
  void KubernetesTarget(const YAML::Node& node, const std::string& f, v1::DeployTarget* target) const {
    Keys(node, f, {"kubeconfig", "context", "namespace", "inCluster"});
    target->set_kind(v1::TARGET_KIND_KUBERNETES);
    v1::KubernetesTargetConfig* k = target->mutable_kubernetes();
    if (node["kubeconfig"]) k->set_kubeconfig(Str(node["kubeconfig"], f + ".kubeconfig"));
    if (node["context"]) k->set_context(Str(node["context"], f + ".context"));
    if (node["namespace"]) k->set_namespace_(Str(node["namespace"], f + ".namespace"));
    if (node["inCluster"]) k->set_in_cluster(Bool(node["inCluster"], f + ".inCluster"));
    if (k->in_cluster() && (!k->kubeconfig().empty() || !k->context().empty()))
      Fail(node, f, "inCluster: true takes no kubeconfig or context");
    if (!k->in_cluster() && k->kubeconfig().empty())
      Fail(node, f + ".kubeconfig", "is required (an absolute path on the deployer's machine), or inCluster: true");
  }

  v1::SecretRef SecretRefOf(const YAML::Node& node, const std::string& f) const {
    Keys(node, f, {"file", "env", "vault"});
    if (node.size() != 1) Fail(node, f, "needs exactly one of file, env or vault");
    v1::SecretRef ref;
    if (node["file"]) ref.set_file(Str(node["file"], f + ".file"));
    if (node["env"]) ref.set_env(Str(node["env"], f + ".env"));
    if (node["vault"]) {
      Keys(node["vault"], f + ".vault", {"path", "field"});
      if (!node["vault"]["path"] || !node["vault"]["field"]) Fail(node["vault"], f + ".vault", "needs path and field");
      ref.mutable_vault()->set_path(Str(node["vault"]["path"], f + ".vault.path"));
      ref.mutable_vault()->set_field(Str(node["vault"]["field"], f + ".vault.field"));
    }
    return ref;
  }

  v1::HostRunAs RunAs(const YAML::Node& r, const std::string& rf) const {
    Keys(r, rf, {"user", "group", "allowRoot"});
    if (!r["user"]) Fail(r, rf + ".user", "is required (a user name or a uid)");
    v1::HostRunAs run_as;
    run_as.set_user(Str(r["user"], rf + ".user"));
    if (r["group"]) run_as.set_group(Str(r["group"], rf + ".group"));
    if (r["allowRoot"]) run_as.set_allow_root(Bool(r["allowRoot"], rf + ".allowRoot"));
    return run_as;
  }

  // ansible: {inventory, connection: local|ssh, extraVars, secretVars,
  // sshPrivateKey, knownHostsFile, sshUser, runAs}.
  void AnsibleTarget(const YAML::Node& node, const std::string& f, v1::DeployTarget* target) const {
    if (node.IsNull()) {
      target->set_kind(v1::TARGET_KIND_ANSIBLE);
      target->mutable_ansible();
      return;
    }
    Keys(node, f, {"inventory", "connection", "extraVars", "secretVars", "sshPrivateKey", "knownHostsFile", "sshUser",
                   "runAs"});
    target->set_kind(v1::TARGET_KIND_ANSIBLE);
    v1::AnsibleTargetConfig* a = target->mutable_ansible();
    if (node["inventory"]) a->set_inventory(Str(node["inventory"], f + ".inventory"));
    std::string connection = node["connection"] ? Str(node["connection"], f + ".connection") : "local";
    if (connection == "local") a->set_connection(v1::ANSIBLE_CONNECTION_LOCAL);
    else if (connection == "ssh") a->set_connection(v1::ANSIBLE_CONNECTION_SSH);
    else Fail(node["connection"], f + ".connection", "must be local or ssh, got \"" + connection + "\"");
    if (node["extraVars"]) {
      if (!node["extraVars"].IsMap()) Fail(node["extraVars"], f + ".extraVars", "must be a mapping");
      for (const auto& kv : node["extraVars"]) {
        std::string key = kv.first.as<std::string>();
        (*a->mutable_extra_vars())[key] = Str(kv.second, f + ".extraVars." + key);
      }
    }
    if (node["secretVars"]) {
      if (!node["secretVars"].IsMap()) Fail(node["secretVars"], f + ".secretVars", "must be a mapping");
      for (const auto& kv : node["secretVars"]) {
        std::string key = kv.first.as<std::string>();
        (*a->mutable_secret_vars())[key] = SecretRefOf(kv.second, f + ".secretVars." + key);
      }
    }
    if (node["sshPrivateKey"]) *a->mutable_ssh_private_key() = SecretRefOf(node["sshPrivateKey"], f + ".sshPrivateKey");
    if (node["knownHostsFile"]) a->set_known_hosts_file(Str(node["knownHostsFile"], f + ".knownHostsFile"));
    if (node["sshUser"]) a->set_ssh_user(Str(node["sshUser"], f + ".sshUser"));
    if (node["runAs"]) *a->mutable_run_as() = RunAs(node["runAs"], f + ".runAs");
    if (a->connection() == v1::ANSIBLE_CONNECTION_SSH) {
      if (!node["sshPrivateKey"]) Fail(node, f + ".sshPrivateKey", "is required for connection ssh ({file|env|vault})");
      if (!node["knownHostsFile"]) Fail(node, f + ".knownHostsFile", "is required for connection ssh (host keys are always checked)");
    }
  }

  // A map of plain values (strings, numbers, booleans) as strings.
  void StringMap(const YAML::Node& node, const std::string& f, google::protobuf::Map<std::string, std::string>* out) const {
    if (!node.IsMap()) Fail(node, f, "must be a mapping of names to values");
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      (*out)[key] = Str(kv.second, f + "." + key);
    }
  }

  void SecretMap(const YAML::Node& node, const std::string& f, google::protobuf::Map<std::string, v1::SecretRef>* out) const {
    if (!node.IsMap()) Fail(node, f, "must be a mapping of names to {file|env|vault}");
    for (const auto& kv : node) {
      std::string key = kv.first.as<std::string>();
      (*out)[key] = SecretRefOf(kv.second, f + "." + key);
    }
  }

  // terraform: {state: pg|configured, variables, secretVariables,
  // applications: {<app>: {variables, secretVariables}}, runAs,
  // memoryLimitMb, cpuLimitSeconds, timeout}.
  void TerraformTarget(const YAML::Node& node, const std::string& f, v1::DeployTarget* target) const {
    target->set_kind(v1::TARGET_KIND_TERRAFORM);
    v1::TerraformTargetConfig* t = target->mutable_terraform();
    t->set_state(v1::TERRAFORM_STATE_PG);
    if (node.IsNull()) return;
    if (!node.IsMap()) Fail(node, f, "must be a mapping ({state, variables, secretVariables, ...}) or empty");
    Keys(node, f, {"state", "variables", "secretVariables", "applications", "runAs", "memoryLimitMb",
                   "cpuLimitSeconds", "timeout"});
    std::string state = node["state"] ? Str(node["state"], f + ".state") : "pg";
    if (state == "pg") t->set_state(v1::TERRAFORM_STATE_PG);
    else if (state == "configured") t->set_state(v1::TERRAFORM_STATE_CONFIGURED);
    else Fail(node["state"], f + ".state", "must be pg or configured, got \"" + state + "\"");
    if (node["variables"]) StringMap(node["variables"], f + ".variables", t->mutable_variables());
    if (node["secretVariables"]) SecretMap(node["secretVariables"], f + ".secretVariables", t->mutable_secret_variables());
    if (node["applications"]) {
      const YAML::Node& apps = node["applications"];
      if (!apps.IsMap()) Fail(apps, f + ".applications", "must be a mapping of application ids to {variables, secretVariables}");
      for (const auto& kv : apps) {
        std::string app = kv.first.as<std::string>();
        const std::string af = f + ".applications." + app;
        Keys(kv.second, af, {"variables", "secretVariables"});
        v1::TerraformVariables& v = (*t->mutable_applications())[app];
        if (kv.second["variables"]) StringMap(kv.second["variables"], af + ".variables", v.mutable_variables());
        if (kv.second["secretVariables"])
          SecretMap(kv.second["secretVariables"], af + ".secretVariables", v.mutable_secret_variables());
      }
    }
    if (node["runAs"]) *t->mutable_run_as() = RunAs(node["runAs"], f + ".runAs");
    auto positive = [&](const char* key) -> uint64_t {
      const std::string kf = f + "." + key;
      std::string v = Str(node[key], kf);
      uint64_t n = 0;
      if (!absl::SimpleAtoi(v, &n) || n == 0) Fail(node[key], kf, "must be a positive whole number, got \"" + v + "\"");
      return n;
    };
    if (node["memoryLimitMb"]) t->set_memory_limit_mb(positive("memoryLimitMb"));
    if (node["cpuLimitSeconds"]) t->set_cpu_limit_seconds(positive("cpuLimitSeconds"));
    if (node["timeout"]) {
      google::protobuf::Duration d = Duration(node["timeout"], f + ".timeout");
      if (d.seconds() <= 0) Fail(node["timeout"], f + ".timeout", "must be at least 1s");
      t->set_timeout_seconds(static_cast<uint64_t>(d.seconds()));
    }
  }

  v1::Environment Environment(const std::string& id, const YAML::Node& node) const {
    const std::string f = "environments." + id;
    v1::Environment env;
    env.set_id(id);
    if (node.IsNull())
      Fail(node, f, "needs a target (host: {rootDir: ...}, kubernetes: {...}, ansible: {...} or terraform: {...})");
    Keys(node, f, {"host", "kubernetes", "ansible", "terraform", "approval", "promoteFrom", "syncWindows", "deployer",
                    "requiredChecks"});
    if ((node["host"] ? 1 : 0) + (node["kubernetes"] ? 1 : 0) + (node["ansible"] ? 1 : 0) + (node["terraform"] ? 1 : 0) > 1)
      Fail(node, f, "has more than one of host, kubernetes, ansible and terraform; an environment has one target");
    if (node["terraform"]) {
      TerraformTarget(node["terraform"], f + ".terraform", env.mutable_target());
    } else if (node["ansible"]) {
      AnsibleTarget(node["ansible"], f + ".ansible", env.mutable_target());
    } else if (node["kubernetes"]) {
      KubernetesTarget(node["kubernetes"], f + ".kubernetes", env.mutable_target());
    } else {
      if (!node["host"]) Fail(node, f + ".host", "is required (host: {rootDir: /absolute/dir} or kubernetes: {...})");
      Keys(node["host"], f + ".host", {"rootDir", "runAs", "allowSpecialModes"});
      env.mutable_target()->set_kind(v1::TARGET_KIND_HOST);
      v1::HostTargetConfig* host = env.mutable_target()->mutable_host();
      if (node["host"]["rootDir"])
        host->set_root_dir(Str(node["host"]["rootDir"], f + ".host.rootDir"));
      else
        Fail(node["host"], f + ".host.rootDir", "is required");
      if (node["host"]["runAs"]) {
        const YAML::Node& r = node["host"]["runAs"];
        const std::string rf = f + ".host.runAs";
        Keys(r, rf, {"user", "group", "allowRoot"});
        if (!r["user"]) Fail(r, rf + ".user", "is required (a user name or a uid)");
        v1::HostRunAs* run_as = host->mutable_run_as();
        run_as->set_user(Str(r["user"], rf + ".user"));
        if (r["group"]) run_as->set_group(Str(r["group"], rf + ".group"));
        if (r["allowRoot"]) run_as->set_allow_root(Bool(r["allowRoot"], rf + ".allowRoot"));
      }
      if (node["host"]["allowSpecialModes"]) {
        host->set_allow_special_modes(Bool(node["host"]["allowSpecialModes"], f + ".host.allowSpecialModes"));
      }
    }
    if (node["approval"]) {
      std::string a = Str(node["approval"], f + ".approval");
      if (a == "auto") env.set_approval(v1::APPROVAL_POLICY_AUTO);
      else if (a == "manual") env.set_approval(v1::APPROVAL_POLICY_MANUAL);
      else Fail(node["approval"], f + ".approval", "must be auto or manual, got \"" + a + "\"");
    } else {
      env.set_approval(v1::APPROVAL_POLICY_MANUAL);
    }
    if (node["promoteFrom"]) env.set_promote_from(Str(node["promoteFrom"], f + ".promoteFrom"));
    if (node["deployer"]) env.set_deployer_group(Str(node["deployer"], f + ".deployer"));
    if (node["requiredChecks"]) {
      const YAML::Node& rc = node["requiredChecks"];
      const std::string rf = f + ".requiredChecks";
      if (!rc.IsSequence()) Fail(rc, rf, "must be a list of check names, as the CI system reports them");
      std::set<std::string> seen;
      for (size_t i = 0; i < rc.size(); ++i) {
        const std::string name = Str(rc[i], absl::StrCat(rf, "[", i, "]"));
        if (!seen.insert(name).second) Fail(rc[i], absl::StrCat(rf, "[", i, "]"), "\"" + name + "\" is listed twice");
        env.add_required_checks(name);
      }
    }
    if (node["syncWindows"]) {
      const YAML::Node& ws = node["syncWindows"];
      if (!ws.IsSequence()) Fail(ws, f + ".syncWindows", "must be a list");
      if (static_cast<int64_t>(ws.size()) > windows_.max_windows) {
        Fail(ws, f + ".syncWindows",
             absl::StrCat(ws.size(), " sync windows, more than ", windows_.max_windows, " (limit ", kMaxSyncWindowsFlag, ")"));
      }
      for (size_t i = 0; i < ws.size(); ++i) {
        const std::string wf = absl::StrCat(f, ".syncWindows[", i, "]");
        Keys(ws[i], wf, {"kind", "schedule", "duration", "timeZone"});
        v1::SyncWindow* w = env.add_sync_windows();
        std::string kind = ws[i]["kind"] ? Str(ws[i]["kind"], wf + ".kind") : "";
        if (kind == "allow") w->set_kind(v1::SYNC_WINDOW_KIND_ALLOW);
        else if (kind == "deny") w->set_kind(v1::SYNC_WINDOW_KIND_DENY);
        else Fail(ws[i], wf + ".kind", "must be allow or deny");
        if (!ws[i]["schedule"]) Fail(ws[i], wf + ".schedule", "is required (five-field cron)");
        w->set_schedule(Str(ws[i]["schedule"], wf + ".schedule"));
        if (!ws[i]["duration"]) Fail(ws[i], wf + ".duration", "is required (e.g. 1h)");
        *w->mutable_duration() = Duration(ws[i]["duration"], wf + ".duration");
        if (ws[i]["timeZone"]) w->set_time_zone(Str(ws[i]["timeZone"], wf + ".timeZone"));
      }
    }
    return env;
  }

  v1::Application Application(const std::string& id, const YAML::Node& node, const std::string& repo,
                              const std::string& ref) const {
    const std::string f = "applications." + id;
    v1::Application app;
    app.set_id(id);
    if (node.IsNull()) Fail(node, f, "needs at least render and environments");
    Keys(node, f, {"repository", "ref", "path", "render", "helm", "environments", "sync", "dependsOn", "healthTimeout",
                   "ignoreDifferences", "notifications"});
    app.set_repository_id(node["repository"] ? Str(node["repository"], f + ".repository") : repo);
    app.set_ref(node["ref"] ? Str(node["ref"], f + ".ref") : ref);
    if (node["path"]) app.set_path(Str(node["path"], f + ".path"));
    std::string render = node["render"] ? Str(node["render"], f + ".render") : "plain";
    if (render == "plain") app.set_render_method(v1::RENDER_METHOD_PLAIN);
    else if (render == "kustomize") app.set_render_method(v1::RENDER_METHOD_KUSTOMIZE);
    else if (render == "helm") app.set_render_method(v1::RENDER_METHOD_HELM);
    else if (render == "ansible") app.set_render_method(v1::RENDER_METHOD_ANSIBLE);
    else if (render == "terraform") app.set_render_method(v1::RENDER_METHOD_TERRAFORM);
    else Fail(node["render"], f + ".render",
              "unknown render method \"" + render + "\" (must be plain, kustomize, helm, ansible or terraform)");
    if (node["helm"]) {
      const YAML::Node& h = node["helm"];
      Keys(h, f + ".helm", {"valuesFiles", "releaseName", "namespace"});
      if (h["valuesFiles"])
        for (const auto& v : StrList(h["valuesFiles"], f + ".helm.valuesFiles")) app.mutable_helm()->add_values_files(v);
      if (h["releaseName"]) app.mutable_helm()->set_release_name(Str(h["releaseName"], f + ".helm.releaseName"));
      if (h["namespace"]) app.mutable_helm()->set_namespace_(Str(h["namespace"], f + ".helm.namespace"));
    }
    if (!node["environments"]) Fail(node, f + ".environments", "is required (a list of environment ids)");
    for (const auto& e : StrList(node["environments"], f + ".environments")) app.add_environment_ids(e);
    app.mutable_sync_policy()->set_automated(true);
    if (node["sync"]) {
      const YAML::Node& s = node["sync"];
      Keys(s, f + ".sync", {"automated", "prune", "selfHeal", "forceConflicts"});
      if (s["automated"]) app.mutable_sync_policy()->set_automated(Bool(s["automated"], f + ".sync.automated"));
      if (s["prune"]) app.mutable_sync_policy()->set_prune(Bool(s["prune"], f + ".sync.prune"));
      if (s["selfHeal"]) app.mutable_sync_policy()->set_self_heal(Bool(s["selfHeal"], f + ".sync.selfHeal"));
      if (s["forceConflicts"])
        app.mutable_sync_policy()->set_force_conflicts(Bool(s["forceConflicts"], f + ".sync.forceConflicts"));
    }
    if (node["dependsOn"])
      for (const auto& d : StrList(node["dependsOn"], f + ".dependsOn")) app.add_depends_on(d);
    if (node["healthTimeout"]) *app.mutable_health_timeout() = Duration(node["healthTimeout"], f + ".healthTimeout");
    if (node["ignoreDifferences"]) {
      const YAML::Node& ig = node["ignoreDifferences"];
      if (!ig.IsSequence()) Fail(ig, f + ".ignoreDifferences", "must be a list");
      for (size_t i = 0; i < ig.size(); ++i) {
        const std::string rf = absl::StrCat(f, ".ignoreDifferences[", i, "]");
        Keys(ig[i], rf, {"group", "kind", "namespace", "name", "jsonPointers"});
        v1::IgnoreDifference* r = app.add_ignore_differences();
        if (ig[i]["group"]) r->set_group(Str(ig[i]["group"], rf + ".group"));
        if (ig[i]["kind"]) r->set_kind(Str(ig[i]["kind"], rf + ".kind"));
        if (ig[i]["namespace"]) r->set_namespace_(Str(ig[i]["namespace"], rf + ".namespace"));
        if (ig[i]["name"]) r->set_name(Str(ig[i]["name"], rf + ".name"));
        if (!ig[i]["jsonPointers"]) Fail(ig[i], rf + ".jsonPointers", "is required");
        for (const auto& p : StrList(ig[i]["jsonPointers"], rf + ".jsonPointers")) r->add_json_pointers(p);
      }
    }
    if (node["notifications"]) {
      const YAML::Node& ns = node["notifications"];
      if (!ns.IsSequence()) Fail(ns, f + ".notifications", "must be a list of subscriptions");
      for (size_t i = 0; i < ns.size(); ++i) {
        *app.add_notifications() = Notification(ns[i], absl::StrCat(f, ".notifications[", i, "]"), id);
      }
    }
    return app;
  }

  // "512Mi", "1Gi", "65536" (bytes): a memory size in bytes; -1 when
  // malformed, INT64_MAX when larger.
  static int64_t ByteSize(const std::string& text) {
    static const std::pair<const char*, int> kUnits[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30}};
    std::string digits = text;
    int shift = 0;
    for (const auto& [suffix, bits] : kUnits) {
      if (absl::EndsWith(text, suffix)) {
        digits = text.substr(0, text.size() - 2);
        shift = bits;
      }
    }
    int64_t n = 0;
    if (digits.empty() || digits.size() > 15 || digits.find_first_not_of("0123456789") != std::string::npos ||
        !absl::SimpleAtoi(digits, &n) || n < 0)
      return -1;
    if (n > (std::numeric_limits<int64_t>::max() >> shift)) return std::numeric_limits<int64_t>::max();
    return n << shift;
  }

  // One entry of `checks:`, attached to each application it covers (those
  // listed, else every application of the file), with the environments it
  // runs in (those listed and the application deploys to; none listed: all).
  void Check(const std::string& name, const YAML::Node& node, std::vector<v1::Application>& apps) const {
    const std::string f = "checks." + name;
    if (node.IsNull()) Fail(node, f, "needs a command");
    Keys(node, f, {"command", "args", "applications", "environments", "timeout", "memoryLimit"});
    v1::CheckCommand check;
    check.set_name(name);
    if (!node["command"]) Fail(node, f + ".command", "is required (the program, or a list: program and arguments)");
    for (const auto& a : StrList(node["command"], f + ".command")) check.add_argv(a);
    if (check.argv().empty() || check.argv(0).empty()) Fail(node["command"], f + ".command", "is empty");
    if (node["args"]) {
      if (!node["args"].IsSequence()) Fail(node["args"], f + ".args", "must be a list of strings");
      for (const auto& a : StrList(node["args"], f + ".args")) check.add_argv(a);
    }
    if (node["timeout"]) {
      absl::Duration d;
      const std::string text = Str(node["timeout"], f + ".timeout");
      if (!absl::ParseDuration(text, &d) || d < absl::Seconds(kMinCheckTimeoutSeconds) ||
          d > absl::Seconds(kMaxCheckTimeoutSeconds) || d != absl::Seconds(absl::ToInt64Seconds(d)))
        Fail(node["timeout"], f + ".timeout",
             absl::StrCat("\"", text, "\" must be whole seconds from 1s to 30m, e.g. 90s or 5m"));
      check.mutable_timeout()->set_seconds(absl::ToInt64Seconds(d));
    } else {
      check.mutable_timeout()->set_seconds(kDefaultCheckTimeoutSeconds);
    }
    if (node["memoryLimit"]) {
      const std::string text = Str(node["memoryLimit"], f + ".memoryLimit");
      const int64_t bytes = ByteSize(text);
      if (bytes < 0) Fail(node["memoryLimit"], f + ".memoryLimit", "\"" + text + "\" must be a size such as 512Mi or 2Gi");
      if (bytes < kMinCheckMemoryBytes || bytes > kMaxCheckMemoryBytes)
        Fail(node["memoryLimit"], f + ".memoryLimit", "\"" + text + "\" is outside 16Mi to 64Gi");
      check.set_memory_limit_bytes(bytes);
    } else {
      check.set_memory_limit_bytes(kDefaultCheckMemoryBytes);
    }
    std::vector<std::string> only_apps;
    if (node["applications"]) only_apps = StrList(node["applications"], f + ".applications");
    std::vector<std::string> only_envs;
    if (node["environments"]) only_envs = StrList(node["environments"], f + ".environments");
    for (size_t i = 0; i < only_apps.size(); ++i) {
      bool found = false;
      for (const auto& a : apps) found = found || a.id() == only_apps[i];
      if (!found)
        Fail(node["applications"], absl::StrCat(f, ".applications[", i, "]"),
             "no application \"" + only_apps[i] + "\" in this file");
    }
    std::set<std::string> envs_used;
    for (v1::Application& app : apps) {
      if (!only_apps.empty() && std::find(only_apps.begin(), only_apps.end(), app.id()) == only_apps.end()) continue;
      v1::CheckCommand mine = check;
      for (const std::string& e : only_envs) {
        if (std::find(app.environment_ids().begin(), app.environment_ids().end(), e) == app.environment_ids().end())
          continue;
        mine.add_environment_ids(e);
        envs_used.insert(e);
      }
      if (!only_envs.empty() && mine.environment_ids().empty()) continue;
      for (const auto& other : app.checks())
        if (other.name() == name) Fail(node, f, "is declared twice");
      *app.add_checks() = std::move(mine);
    }
    for (size_t i = 0; i < only_envs.size(); ++i) {
      if (!envs_used.count(only_envs[i]))
        Fail(node["environments"], absl::StrCat(f, ".environments[", i, "]"),
             "no application the check covers deploys to \"" + only_envs[i] + "\"");
    }
  }

  // One of an application's notifications (docs/notifier.md, "Subscriptions
  // in ferry.yaml"); checked further by ValidateApplication.
  v1::Subscription Notification(const YAML::Node& n, const std::string& f, const std::string& app_id) const {
    Keys(n, f, {"name", "environment", "events", "template", "sink"});
    v1::Subscription s;
    s.set_application_id(app_id);
    if (!n["name"]) Fail(n, f + ".name", "is required (a lowercase DNS label, unique in the application)");
    s.set_name(Str(n["name"], f + ".name"));
    if (n["environment"]) s.set_environment_id(Str(n["environment"], f + ".environment"));
    if (n["template"]) s.set_template_(Str(n["template"], f + ".template"));
    if (!n["events"]) Fail(n, f + ".events", "is required (e.g. [deployment_failed, deployment_rolled_back])");
    const std::vector<std::string> events = StrList(n["events"], f + ".events");
    for (size_t i = 0; i < events.size(); ++i) {
      v1::NotificationEvent e;
      if (!v1::NotificationEvent_Parse("NOTIFICATION_EVENT_" + absl::AsciiStrToUpper(events[i]), &e) ||
          e == v1::NOTIFICATION_EVENT_UNSPECIFIED || absl::AsciiStrToLower(events[i]) != events[i]) {
        Fail(n["events"], absl::StrCat(f, ".events[", i, "]"),
             "unknown event \"" + events[i].substr(0, 64) +
                 "\" (deployment_started, deployment_succeeded, deployment_failed, deployment_rolled_back, "
                 "plan_waiting_for_approval, drift_detected, drift_healed)");
      }
      s.add_events(e);
    }
    const std::string sf = f + ".sink";
    if (!n["sink"]) Fail(n, sf, "is required (kind: webhook | slack | teams | email)");
    const YAML::Node& k = n["sink"];
    Keys(k, sf, {"kind", "url", "urlSecret", "hmacSecret", "smtpUrl", "smtpUsername", "smtpPassword", "from", "to"});
    v1::Sink* sink = s.mutable_sink();
    const std::string kind = k["kind"] ? Str(k["kind"], sf + ".kind") : "";
    if (kind == "webhook") sink->set_kind(v1::SINK_KIND_WEBHOOK);
    else if (kind == "slack") sink->set_kind(v1::SINK_KIND_SLACK);
    else if (kind == "teams") sink->set_kind(v1::SINK_KIND_TEAMS);
    else if (kind == "email") sink->set_kind(v1::SINK_KIND_EMAIL);
    else Fail(k["kind"] ? k["kind"] : k, sf + ".kind", "must be webhook, slack, teams or email");
    if (k["url"]) sink->set_url(Str(k["url"], sf + ".url"));
    if (k["urlSecret"]) *sink->mutable_url_secret() = SecretRefOf(k["urlSecret"], sf + ".urlSecret");
    if (k["hmacSecret"]) *sink->mutable_hmac_secret() = SecretRefOf(k["hmacSecret"], sf + ".hmacSecret");
    if (k["smtpUrl"]) sink->set_smtp_url(Str(k["smtpUrl"], sf + ".smtpUrl"));
    if (k["smtpUsername"]) sink->set_smtp_username(Str(k["smtpUsername"], sf + ".smtpUsername"));
    if (k["smtpPassword"]) *sink->mutable_smtp_password() = SecretRefOf(k["smtpPassword"], sf + ".smtpPassword");
    if (k["from"]) sink->set_from(Str(k["from"], sf + ".from"));
    if (k["to"]) {
      for (const auto& to : StrList(k["to"], sf + ".to")) sink->add_to(to);
    }
    return s;
  }

  const std::string file_;
  const SyncWindowLimits windows_;
};

}  // namespace

absl::StatusOr<DeclaredConfig> ParseDeclarativeConfig(const std::string& text, const std::string& file,
                                                      const std::string& repository_id, const std::string& ref,
                                                      const ParseLimits& limits, const SyncWindowLimits& windows) {
  // Within the limits before yaml-cpp's tree is walked: the walk below
  // follows aliases, so its work is what the reader counts.
  BoundedYamlReader reader(limits, limits.max_manifest_bytes);
  if (absl::StatusOr<nlohmann::json> bounded = reader.Read(text, 1); !bounded.ok()) {
    int line = reader.error_line();
    return absl::Status(bounded.status().code(), absl::StrCat(file, line > 0 ? absl::StrCat(":", line) : "", ": ",
                                                              bounded.status().message()));
  }
  Parser p(file, windows);
  DeclaredConfig out;
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return out;
    p.Keys(root, "ferry.yaml", {"environments", "applications", "checks"});
    if (const YAML::Node envs = root["environments"]; envs && !envs.IsNull()) {
      if (!envs.IsMap()) p.Fail(envs, "environments", "must be a mapping of id -> environment");
      for (const auto& kv : envs) out.environments.push_back(p.Environment(kv.first.as<std::string>(), kv.second));
    }
    if (const YAML::Node apps = root["applications"]; apps && !apps.IsNull()) {
      if (!apps.IsMap()) p.Fail(apps, "applications", "must be a mapping of id -> application");
      for (const auto& kv : apps)
        out.applications.push_back(p.Application(kv.first.as<std::string>(), kv.second, repository_id, ref));
    }
    if (const YAML::Node checks = root["checks"]; checks && !checks.IsNull()) {
      if (!checks.IsMap()) p.Fail(checks, "checks", "must be a mapping of name -> check");
      if (static_cast<int>(checks.size()) > kMaxCheckCommands)
        p.Fail(checks, "checks", absl::StrCat(checks.size(), " checks, more than ", kMaxCheckCommands));
      for (const auto& kv : checks) p.Check(kv.first.as<std::string>(), kv.second, out.applications);
    }
  } catch (const ConfigError& e) {
    return absl::InvalidArgumentError(e.message);
  } catch (const YAML::Exception& e) {
    int line = e.mark.is_null() ? 0 : e.mark.line + 1;
    return absl::InvalidArgumentError(absl::StrCat(file, ":", line, ": malformed YAML: ", e.msg));
  }
  return out;
}

}  // namespace ferry::planner
