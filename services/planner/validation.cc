#include "services/planner/validation.h"

#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/notifications/subscription_rules.h"
#include "common/status/status_macros.h"
#include "re2/re2.h"
#include "services/planner/repo_path.h"
#include "services/planner/sync_window.h"

namespace ferry::planner {

absl::Status ValidateId(const std::string& id, const std::string& field) {
  static const RE2 kLabel("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  if (id.empty()) return absl::InvalidArgumentError(field + ": is required");
  if (id.size() > 63 || !RE2::FullMatch(id, kLabel)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", id, "\" is not a lowercase DNS label ([a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateApplication(v1::Application& app, const std::set<std::string>& environments) {
  RETURN_IF_ERROR(ValidateId(app.id(), "application.id"));
  RETURN_IF_ERROR(ValidateId(app.repository_id(), "application.repository_id"));
  if (app.ref().empty()) return absl::InvalidArgumentError("application.ref: is required (e.g. \"main\")");
  app.set_ref(FullRefName(app.ref()));
  absl::StatusOr<std::string> path = NormalizeRepoPath(app.path(), "application.path");
  if (!path.ok()) return path.status();
  app.set_path(*path);
  switch (app.render_method()) {
    case v1::RENDER_METHOD_PLAIN:
    case v1::RENDER_METHOD_KUSTOMIZE:
    case v1::RENDER_METHOD_HELM:
    case v1::RENDER_METHOD_ANSIBLE:
    case v1::RENDER_METHOD_TERRAFORM:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("application.render_method: unknown render method ",
                                                     static_cast<int>(app.render_method()),
                                                     " (must be plain, kustomize, helm, ansible or terraform)"));
  }
  if (app.has_helm() && app.render_method() != v1::RENDER_METHOD_HELM) {
    return absl::InvalidArgumentError("application.helm: only allowed with render method helm");
  }
  for (int i = 0; i < app.helm().values_files_size(); ++i) {
    absl::StatusOr<std::string> resolved = ResolveRepoPath(app.path(), app.helm().values_files(i));
    if (!resolved.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("application.helm.values_files[", i, "]: path escapes the repository: ", resolved.status().message()));
    }
  }
  if (app.environment_ids().empty()) {
    return absl::InvalidArgumentError("application.environment_ids: at least one environment is required");
  }
  std::set<std::string> seen;
  for (int i = 0; i < app.environment_ids_size(); ++i) {
    const std::string& env = app.environment_ids(i);
    if (!environments.count(env)) {
      return absl::InvalidArgumentError(absl::StrCat("application.environment_ids[", i, "]: unknown environment \"", env, "\""));
    }
    if (!seen.insert(env).second) {
      return absl::InvalidArgumentError(absl::StrCat("application.environment_ids[", i, "]: \"", env, "\" is listed twice"));
    }
  }
  for (int i = 0; i < app.depends_on_size(); ++i) {
    if (app.depends_on(i) == app.id()) {
      return absl::InvalidArgumentError(absl::StrCat("application.depends_on[", i, "]: cycle: ", app.id(), " -> ", app.id()));
    }
  }
  if (app.health_timeout().seconds() < 0 || app.health_timeout().nanos() < 0) {
    return absl::InvalidArgumentError("application.health_timeout: must not be negative");
  }
  RETURN_IF_ERROR(ValidateCheckCommands(app));
  for (int i = 0; i < app.ignore_differences_size(); ++i) {
    const auto& rule = app.ignore_differences(i);
    if (rule.json_pointers().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("application.ignore_differences[", i, "].json_pointers: at least one is required"));
    }
    for (int j = 0; j < rule.json_pointers_size(); ++j) {
      const std::string& p = rule.json_pointers(j);
      if (p.empty() || p[0] != '/') {
        return absl::InvalidArgumentError(absl::StrCat("application.ignore_differences[", i, "].json_pointers[", j,
                                                       "]: \"", p, "\" is not a JSON pointer (must start with \"/\")"));
      }
    }
  }
  std::set<std::string> names;
  for (int i = 0; i < app.notifications_size(); ++i) {
    v1::Subscription& s = *app.mutable_notifications(i);
    const std::string field = absl::StrCat("application.notifications[", i, "]");
    if (s.application_id().empty()) s.set_application_id(app.id());
    s.clear_source();
    s.clear_create_time();
    RETURN_IF_ERROR(notifications::ValidateDeclaredSubscription(s, app.id(), field));
    if (!names.insert(s.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".name: \"", s.name(), "\" is used twice"));
    }
    if (!s.environment_id().empty() && !seen.count(s.environment_id())) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".environment_id: \"", s.environment_id(),
                                                     "\" is not one of the application's environments"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateCheckCommands(v1::Application& app) {
  if (app.checks_size() > kMaxCheckCommands) {
    return absl::InvalidArgumentError(
        absl::StrCat("application.checks: ", app.checks_size(), " checks, more than ", kMaxCheckCommands));
  }
  const std::set<std::string> app_envs(app.environment_ids().begin(), app.environment_ids().end());
  std::set<std::string> names;
  for (int i = 0; i < app.checks_size(); ++i) {
    v1::CheckCommand& check = *app.mutable_checks(i);
    const std::string f = absl::StrCat("application.checks[", i, "]");
    const std::string& name = check.name();
    if (name.empty() || name.size() > kMaxCheckNameBytes)
      return absl::InvalidArgumentError(absl::StrCat(f, ".name: a check name must be 1 to ", kMaxCheckNameBytes, " bytes"));
    for (unsigned char c : name)
      if (c < 0x20 || c == 0x7f)
        return absl::InvalidArgumentError(absl::StrCat(f, ".name: \"", name, "\" has a control character"));
    if (name.front() == ' ' || name.back() == ' ')
      return absl::InvalidArgumentError(absl::StrCat(f, ".name: \"", name, "\" starts or ends with a space"));
    if (!names.insert(name).second)
      return absl::InvalidArgumentError(absl::StrCat(f, ".name: \"", name, "\" is declared twice"));
    if (check.argv().empty() || check.argv(0).empty())
      return absl::InvalidArgumentError(absl::StrCat(f, ".argv: the command is empty (a program and its arguments)"));
    if (check.argv_size() > kMaxCheckArgs)
      return absl::InvalidArgumentError(absl::StrCat(f, ".argv: ", check.argv_size(), " arguments, more than ", kMaxCheckArgs));
    for (int j = 0; j < check.argv_size(); ++j) {
      const std::string& arg = check.argv(j);
      if (arg.size() > kMaxCheckArgBytes)
        return absl::InvalidArgumentError(absl::StrCat(f, ".argv[", j, "]: longer than ", kMaxCheckArgBytes, " bytes"));
      if (arg.find('\0') != std::string::npos)
        return absl::InvalidArgumentError(absl::StrCat(f, ".argv[", j, "]: holds a NUL byte"));
    }
    const std::string& program = check.argv(0);
    for (unsigned char c : program)
      if (c < 0x20 || c == 0x7f)
        return absl::InvalidArgumentError(absl::StrCat(f, ".argv[0]: the program name has a control character"));
    if (program.front() == '/') {
      for (absl::string_view part : absl::StrSplit(program.substr(1), '/'))
        if (part.empty() || part == "." || part == "..")
          return absl::InvalidArgumentError(absl::StrCat(f, ".argv[0]: \"", program,
                                                         "\" is not a normalised absolute path"));
    } else if (program.find('/') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          f, ".argv[0]: \"", program,
          "\" must be an absolute path or a bare program name (the check runs in a scratch folder, not the repository)"));
    }
    std::set<std::string> seen_envs;
    for (int j = 0; j < check.environment_ids_size(); ++j) {
      const std::string& env = check.environment_ids(j);
      if (!app_envs.count(env))
        return absl::InvalidArgumentError(absl::StrCat(f, ".environment_ids[", j, "]: \"", env,
                                                       "\" is not an environment of application \"", app.id(), "\""));
      if (!seen_envs.insert(env).second)
        return absl::InvalidArgumentError(absl::StrCat(f, ".environment_ids[", j, "]: \"", env, "\" is listed twice"));
    }
    if (!check.has_timeout()) check.mutable_timeout()->set_seconds(kDefaultCheckTimeoutSeconds);
    const int64_t t = check.timeout().seconds();
    if (check.timeout().nanos() != 0 || t < kMinCheckTimeoutSeconds || t > kMaxCheckTimeoutSeconds)
      return absl::InvalidArgumentError(absl::StrCat(f, ".timeout: must be whole seconds from ", kMinCheckTimeoutSeconds,
                                                     "s to ", kMaxCheckTimeoutSeconds / 60, "m"));
    if (check.memory_limit_bytes() == 0) check.set_memory_limit_bytes(kDefaultCheckMemoryBytes);
    if (check.memory_limit_bytes() < kMinCheckMemoryBytes || check.memory_limit_bytes() > kMaxCheckMemoryBytes)
      return absl::InvalidArgumentError(absl::StrCat(f, ".memory_limit_bytes: ", check.memory_limit_bytes(),
                                                     " is outside 16 MiB to 64 GiB"));
  }
  return absl::OkStatus();
}

absl::Status ValidateDependsOn(const std::map<std::string, v1::Application>& apps) {
  for (const auto& [id, app] : apps) {
    for (int i = 0; i < app.depends_on_size(); ++i) {
      if (!apps.count(app.depends_on(i))) {
        return absl::InvalidArgumentError(absl::StrCat("application.depends_on[", i, "]: unknown application \"",
                                                       app.depends_on(i), "\" (in ", id, ")"));
      }
    }
  }
  // Depth-first search with colours; report the cycle's path.
  std::map<std::string, int> colour;  // 0 new, 1 on stack, 2 done
  std::vector<std::string> stack;
  std::string cycle;
  std::function<bool(const std::string&)> visit = [&](const std::string& id) {
    colour[id] = 1;
    stack.push_back(id);
    for (const std::string& dep : apps.at(id).depends_on()) {
      if (colour[dep] == 1) {
        auto from = std::find(stack.begin(), stack.end(), dep);
        std::vector<std::string> path(from, stack.end());
        path.push_back(dep);
        cycle = absl::StrJoin(path, " -> ");
        return true;
      }
      if (colour[dep] == 0 && visit(dep)) return true;
    }
    stack.pop_back();
    colour[id] = 2;
    return false;
  };
  for (const auto& [id, app] : apps) {
    if (colour[id] == 0 && visit(id)) {
      return absl::InvalidArgumentError("application.depends_on: cycle: " + cycle);
    }
  }
  return absl::OkStatus();
}

namespace {

// A user or group as runAs may name it: a number, or a POSIX-style name
// (letters, digits, '_', '-', '.', at most 32 bytes, not starting with '-').
bool ValidAccountName(const std::string& s) {
  if (s.empty() || s.size() > 32 || s[0] == '-') return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

bool IsRootName(const std::string& s) {
  if (s == "root") return true;
  uint64_t n = 0;
  return absl::SimpleAtoi(s, &n) && n == 0;
}

}  // namespace

absl::Status ValidateRunAs(const v1::HostTargetConfig& host) {
  if (!host.has_run_as()) return absl::OkStatus();
  const v1::HostRunAs& r = host.run_as();
  if (!ValidAccountName(r.user())) {
    return absl::InvalidArgumentError(absl::StrCat("environment.target.host.run_as.user: \"", r.user().substr(0, 64),
                                                   "\" must be a user name or a uid"));
  }
  if (!r.group().empty() && !ValidAccountName(r.group())) {
    return absl::InvalidArgumentError(absl::StrCat("environment.target.host.run_as.group: \"", r.group().substr(0, 64),
                                                   "\" must be a group name or a gid"));
  }
  if ((IsRootName(r.user()) || IsRootName(r.group())) && !r.allow_root()) {
    return absl::InvalidArgumentError(
        "environment.target.host.run_as: names root; workloads run as root only when runAs sets allowRoot and the "
        "deployer is started with --allow-root-workloads");
  }
  return absl::OkStatus();
}

// An Ansible target: the inventory stays inside the application folder, ssh
// has a key and a known_hosts file, variable names are Ansible identifiers.
absl::Status ValidateAnsibleTarget(const v1::DeployTarget& target) {
  if (!target.has_ansible()) {
    return absl::InvalidArgumentError("environment.target.ansible: is required for TARGET_KIND_ANSIBLE");
  }
  const v1::AnsibleTargetConfig& a = target.ansible();
  if (!a.inventory().empty()) {
    absl::StatusOr<std::string> inv = NormalizeRepoPath(a.inventory(), "environment.target.ansible.inventory");
    if (!inv.ok() || a.inventory()[0] == '/') {
      return absl::InvalidArgumentError(absl::StrCat("environment.target.ansible.inventory: \"", a.inventory(),
                                                     "\" must be a path inside the application folder"));
    }
  }
  auto valid_var = [](const std::string& name) {
    if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
    return true;
  };
  for (const auto& [name, value] : a.extra_vars()) {
    if (!valid_var(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment.target.ansible.extra_vars: \"", name, "\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"));
    }
  }
  for (const auto& [name, ref] : a.secret_vars()) {
    if (!valid_var(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment.target.ansible.secret_vars: \"", name, "\" is not a variable name ([A-Za-z_][A-Za-z0-9_]*)"));
    }
    if (a.extra_vars().count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment.target.ansible.secret_vars: \"", name, "\" is also in extra_vars"));
    }
    if (ref.source_case() == v1::SecretRef::SOURCE_NOT_SET) {
      return absl::InvalidArgumentError(
          absl::StrCat("environment.target.ansible.secret_vars.", name, ": needs file, env or vault"));
    }
  }
  if (a.connection() == v1::ANSIBLE_CONNECTION_SSH) {
    if (a.ssh_private_key().source_case() == v1::SecretRef::SOURCE_NOT_SET) {
      return absl::InvalidArgumentError(
          "environment.target.ansible.ssh_private_key: is required for connection ssh (a secret source: file, env or vault)");
    }
    if (a.known_hosts_file().empty() || a.known_hosts_file()[0] != '/') {
      return absl::InvalidArgumentError(
          "environment.target.ansible.known_hosts_file: is required for connection ssh (an absolute path on the "
          "deployer's machine; host keys are always checked)");
    }
  } else if (a.connection() != v1::ANSIBLE_CONNECTION_LOCAL && a.connection() != v1::ANSIBLE_CONNECTION_UNSPECIFIED) {
    return absl::InvalidArgumentError("environment.target.ansible.connection: must be local or ssh");
  }
  if (a.has_run_as()) {
    v1::HostTargetConfig host;
    *host.mutable_run_as() = a.run_as();
    RETURN_IF_ERROR(ValidateRunAs(host));
  }
  return absl::OkStatus();
}

// Terraform input variable names (letters, digits, '_' and '-', not
// starting with a digit), as the terraform target takes them.
static bool TerraformVariableName(const std::string& name) {
  if (name.empty() || name.size() > 128 || (name[0] >= '0' && name[0] <= '9') || name[0] == '-') return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  return true;
}

static absl::Status ValidateTerraformVariables(const google::protobuf::Map<std::string, std::string>& plain,
                                        const google::protobuf::Map<std::string, v1::SecretRef>& secret,
                                        const std::string& f) {
  for (const auto& [name, value] : plain) {
    if (!TerraformVariableName(name))
      return absl::InvalidArgumentError(
          absl::StrCat(f, ".variables: \"", name, "\" is not a variable name ([A-Za-z_][A-Za-z0-9_-]*)"));
  }
  for (const auto& [name, ref] : secret) {
    if (!TerraformVariableName(name))
      return absl::InvalidArgumentError(
          absl::StrCat(f, ".secret_variables: \"", name, "\" is not a variable name ([A-Za-z_][A-Za-z0-9_-]*)"));
    if (plain.count(name))
      return absl::InvalidArgumentError(absl::StrCat(f, ".secret_variables: \"", name, "\" is also in variables"));
    if (ref.source_case() == v1::SecretRef::SOURCE_NOT_SET)
      return absl::InvalidArgumentError(absl::StrCat(f, ".secret_variables.", name, ": needs file, env or vault"));
  }
  return absl::OkStatus();
}

// A Terraform target: a known state backend, variable names Terraform takes,
// application ids as ids, limits within reason, runAs as the host target's.
static absl::Status ValidateTerraformTarget(const v1::DeployTarget& target) {
  if (!target.has_terraform())
    return absl::InvalidArgumentError("environment.target.terraform: is required for TARGET_KIND_TERRAFORM");
  const v1::TerraformTargetConfig& t = target.terraform();
  if (t.state() != v1::TERRAFORM_STATE_UNSPECIFIED && t.state() != v1::TERRAFORM_STATE_PG &&
      t.state() != v1::TERRAFORM_STATE_CONFIGURED)
    return absl::InvalidArgumentError("environment.target.terraform.state: must be pg or configured");
  RETURN_IF_ERROR(ValidateTerraformVariables(t.variables(), t.secret_variables(), "environment.target.terraform"));
  for (const auto& [app, vars] : t.applications()) {
    RETURN_IF_ERROR(ValidateId(app, "environment.target.terraform.applications"));
    RETURN_IF_ERROR(ValidateTerraformVariables(vars.variables(), vars.secret_variables(),
                                               absl::StrCat("environment.target.terraform.applications.", app)));
  }
  if (t.memory_limit_mb() > (1u << 20))
    return absl::InvalidArgumentError("environment.target.terraform.memory_limit_mb: at most 1048576 (1 TiB)");
  if (t.cpu_limit_seconds() > 86400)
    return absl::InvalidArgumentError("environment.target.terraform.cpu_limit_seconds: at most 86400");
  if (t.timeout_seconds() > 86400)
    return absl::InvalidArgumentError("environment.target.terraform.timeout_seconds: at most 86400 (24h)");
  if (t.has_run_as()) {
    v1::HostTargetConfig host;
    *host.mutable_run_as() = t.run_as();
    RETURN_IF_ERROR(ValidateRunAs(host));
  }
  return absl::OkStatus();
}

absl::Status ValidateTarget(const v1::DeployTarget& target) {
  if (target.kind() == v1::TARGET_KIND_KUBERNETES) {
    if (!target.has_kubernetes()) {
      return absl::InvalidArgumentError("environment.target.kubernetes: is required for TARGET_KIND_KUBERNETES");
    }
    const v1::KubernetesTargetConfig& k = target.kubernetes();
    if (k.in_cluster()) {
      if (!k.kubeconfig().empty() || !k.context().empty()) {
        return absl::InvalidArgumentError(
            "environment.target.kubernetes: in_cluster takes neither kubeconfig nor context");
      }
    } else if (k.kubeconfig().empty() || k.kubeconfig()[0] != '/') {
      return absl::InvalidArgumentError(absl::StrCat("environment.target.kubernetes.kubeconfig: \"", k.kubeconfig(),
                                                     "\" must be an absolute path (or set in_cluster)"));
    }
    if (!k.namespace_().empty()) RETURN_IF_ERROR(ValidateId(k.namespace_(), "environment.target.kubernetes.namespace"));
    return absl::OkStatus();
  }
  if (target.kind() == v1::TARGET_KIND_ANSIBLE) return ValidateAnsibleTarget(target);
  if (target.kind() == v1::TARGET_KIND_TERRAFORM) return ValidateTerraformTarget(target);
  if (target.kind() != v1::TARGET_KIND_HOST || !target.has_host()) {
    return absl::InvalidArgumentError(
        "environment.target: must be a host target with host.root_dir (kind TARGET_KIND_HOST), a Kubernetes "
        "target (kind TARGET_KIND_KUBERNETES), an Ansible target (kind TARGET_KIND_ANSIBLE) or a Terraform target "
        "(kind TARGET_KIND_TERRAFORM)");
  }
  const std::string& root = target.host().root_dir();
  if (root.empty() || root[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("environment.target.host.root_dir: \"", root, "\" must be an absolute path"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRequiredChecks(const v1::Environment& env) {
  if (env.required_checks_size() > kMaxRequiredChecks) {
    return absl::InvalidArgumentError(absl::StrCat("environment.required_checks: ", env.required_checks_size(),
                                                   " checks, more than ", kMaxRequiredChecks));
  }
  std::set<std::string> seen;
  for (int i = 0; i < env.required_checks_size(); ++i) {
    const std::string& name = env.required_checks(i);
    const std::string field = absl::StrCat("environment.required_checks[", i, "]");
    if (name.empty() || name.size() > kMaxCheckNameBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": a check name must be 1 to ", kMaxCheckNameBytes, " bytes"));
    }
    for (unsigned char c : name) {
      if (c < 0x20 || c == 0x7f)
        return absl::InvalidArgumentError(absl::StrCat(field, ": \"", name, "\" has a control character"));
    }
    if (name.front() == ' ' || name.back() == ' ')
      return absl::InvalidArgumentError(absl::StrCat(field, ": \"", name, "\" starts or ends with a space"));
    if (!seen.insert(name).second)
      return absl::InvalidArgumentError(absl::StrCat(field, ": \"", name, "\" is listed twice"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEnvironment(const v1::Environment& env, const std::map<std::string, v1::Environment>& environments,
                                 const SyncWindowLimits& windows) {
  RETURN_IF_ERROR(ValidateId(env.id(), "environment.id"));
  RETURN_IF_ERROR(ValidateTarget(env.target()));
  if (env.target().has_host()) RETURN_IF_ERROR(ValidateRunAs(env.target().host()));
  if (env.approval() != v1::APPROVAL_POLICY_UNSPECIFIED && env.approval() != v1::APPROVAL_POLICY_AUTO &&
      env.approval() != v1::APPROVAL_POLICY_MANUAL) {
    return absl::InvalidArgumentError("environment.approval: must be auto or manual");
  }
  RETURN_IF_ERROR(ValidateSyncWindows(env.sync_windows(), "environment.sync_windows", windows));
  if (!env.deployer_group().empty()) {
    const std::string& g = env.deployer_group();
    bool ok = g.size() <= 63 && g.front() != '-' && g.back() != '-';
    for (char c : g) ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat("environment.deployer_group: \"", g,
                                                     "\" must be 1 to 63 of a-z, 0-9 and '-', starting and ending "
                                                     "with a letter or digit (a deployer's --deployer-group)"));
    }
  }
  RETURN_IF_ERROR(ValidateRequiredChecks(env));
  if (!env.promote_from().empty()) {
    if (env.promote_from() == env.id()) {
      return absl::InvalidArgumentError("environment.promote_from: an environment cannot promote from itself");
    }
    if (!environments.count(env.promote_from())) {
      return absl::InvalidArgumentError(absl::StrCat("environment.promote_from: unknown environment \"", env.promote_from(), "\""));
    }
    // No promotion cycle.
    std::set<std::string> seen = {env.id()};
    std::string at = env.promote_from();
    while (!at.empty()) {
      if (!seen.insert(at).second) {
        return absl::InvalidArgumentError(absl::StrCat("environment.promote_from: promotion cycle through \"", at, "\""));
      }
      auto it = environments.find(at);
      at = it == environments.end() ? "" : it->second.promote_from();
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> TopologicalOrder(const std::map<std::string, v1::Application>& apps) {
  std::vector<std::string> order;
  std::set<std::string> done;
  std::set<std::string> on_stack;
  std::function<void(const std::string&)> visit = [&](const std::string& id) {
    if (done.count(id) || on_stack.count(id)) return;
    on_stack.insert(id);
    auto it = apps.find(id);
    if (it != apps.end())
      for (const std::string& dep : it->second.depends_on()) visit(dep);
    on_stack.erase(id);
    done.insert(id);
    if (it != apps.end()) order.push_back(id);
  };
  for (const auto& [id, app] : apps) visit(id);
  return order;
}

}  // namespace ferry::planner
