#include "common/auth/policy.h"

#include <fnmatch.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace ferry::auth {
namespace {

// Nodes visited while reading, an alias counted each time it is used: a
// billion-laughs file is refused after this many, not expanded.
constexpr int64_t kMaxPolicyNodes = 100'000;
// The largest clock_skew an issuer may have: more would all but switch
// expiry checks off.
constexpr absl::Duration kMaxClockSkew = absl::Hours(1);

const char* const kRoles[] = {"viewer", "operator", "approver", "ci", "admin"};

bool RoleGrants(const std::string& role, Permission permission) {
  if (role == "admin") return true;
  switch (permission) {
    case Permission::kView:
      return role == "viewer" || role == "operator" || role == "approver" || role == "ci";
    case Permission::kOperate:
      return role == "operator";
    case Permission::kApprove:
      return role == "approver";
    case Permission::kReportChecks:
      return role == "ci";
    case Permission::kAdmin:
      return false;
  }
  return false;
}

// Thrown while reading, caught in Parse.
struct Problem {
  int line;  // 1-based; 0 unknown
  std::string message;
};

int LineOf(const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? 0 : mark.line + 1;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool HasControlCharacter(absl::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// Walks the node tree the policy's schema expects, counting nodes (see
// kMaxPolicyNodes) and throwing a Problem at the first thing wrong. The
// schema bounds the depth, so a recursive alias is refused by type, not
// followed.
class Reader {
 public:
  [[noreturn]] void Fail(const YAML::Node& at, const std::string& path, const std::string& problem) const {
    Fail(LineOf(at), path, problem);
  }
  [[noreturn]] void Fail(int line, const std::string& path, const std::string& problem) const {
    throw Problem{line, path.empty() ? problem : absl::StrCat(path, ": ", problem)};
  }

  void Count(const YAML::Node& node) {
    if (++nodes_ > kMaxPolicyNodes) {
      Fail(node, "", absl::StrCat("more than ", kMaxPolicyNodes, " YAML nodes (aliases counted each time they are used)"));
    }
  }

  // The entries of a mapping whose keys must be among `allowed` (any key
  // when `allowed` is empty), each key once.
  std::vector<std::pair<std::string, YAML::Node>> Map(const YAML::Node& node, const std::string& path,
                                                      const std::vector<std::string>& allowed) {
    Count(node);
    if (!node.IsMap()) Fail(node, path, absl::StrCat("must be a mapping, not ", Describe(node)));
    std::vector<std::pair<std::string, YAML::Node>> entries;
    std::set<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node key = it->first;
      Count(key);
      if (!key.IsScalar()) Fail(key, path, absl::StrCat("a key must be a string, not ", Describe(key)));
      const std::string& name = key.Scalar();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        Fail(key, path,
             absl::StrCat("unknown key \"", name, "\" (expected ", absl::StrJoin(allowed, ", "), ")"));
      }
      if (!seen.insert(name).second) Fail(key, path, absl::StrCat("key \"", name, "\" appears twice"));
      // Every key of the policy wants a value; a null one's mark is wherever
      // the parser stood next, so name the key's line.
      if (it->second.IsNull()) {
        Fail(key, path.empty() ? name : absl::StrCat(path, ".", name), "has no value");
      }
      entries.emplace_back(name, it->second);
    }
    return entries;
  }

  // The elements of a list.
  std::vector<YAML::Node> List(const YAML::Node& node, const std::string& path) {
    Count(node);
    if (!node.IsSequence()) Fail(node, path, absl::StrCat("must be a list, not ", Describe(node)));
    std::vector<YAML::Node> items;
    for (const YAML::Node& item : node) {
      Count(item);
      items.push_back(item);
    }
    return items;
  }

  std::string String(const YAML::Node& node, const std::string& path) {
    Count(node);
    if (!node.IsScalar()) Fail(node, path, absl::StrCat("must be a string, not ", Describe(node)));
    const std::string& s = node.Scalar();
    if (s.empty()) Fail(node, path, "must not be empty");
    if (HasControlCharacter(s)) Fail(node, path, "must not contain control characters");
    return s;
  }

  int Int(const YAML::Node& node, const std::string& path) {
    Count(node);
    int v = 0;
    if (!node.IsScalar() || node.Tag() == "!" || !absl::SimpleAtoi(node.Scalar(), &v)) {
      Fail(node, path, absl::StrCat("must be an integer, not ", Shown(node)));
    }
    return v;
  }

  bool Bool(const YAML::Node& node, const std::string& path) {
    Count(node);
    if (node.IsScalar() && node.Tag() != "!") {
      const std::string& s = node.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Fail(node, path, absl::StrCat("must be true or false, not ", Shown(node)));
  }

 private:
  static std::string Shown(const YAML::Node& node) {
    if (!node.IsScalar()) return Describe(node);
    if (node.Tag() == "!") return absl::StrCat("the quoted string \"", absl::CEscape(node.Scalar()), "\"");
    return absl::StrCat("\"", absl::CEscape(node.Scalar()), "\"");
  }

  int64_t nodes_ = 0;
};

void CheckSubject(Reader& r, const YAML::Node& at, const std::string& path, const std::string& subject) {
  absl::string_view name = subject;
  if (!absl::ConsumePrefix(&name, "user:") && !absl::ConsumePrefix(&name, "group:") &&
      !absl::ConsumePrefix(&name, "service:")) {
    r.Fail(at, path, absl::StrCat("subject \"", subject, "\" must be user:<name>, group:<name> or service:<name>"));
  }
  if (name.empty()) r.Fail(at, path, absl::StrCat("subject \"", subject, "\" names nobody"));
  if (name != absl::StripAsciiWhitespace(name)) {
    r.Fail(at, path, absl::StrCat("subject \"", subject, "\" has spaces around its name"));
  }
  if (absl::StrContains(name, '*') || absl::StrContains(name, '?')) {
    r.Fail(at, path, absl::StrCat("subject \"", subject, "\": subjects are exact names, not globs"));
  }
}

void CheckGlob(Reader& r, const YAML::Node& at, const std::string& path, const std::string& glob) {
  for (char c : glob) {
    if (c == '[' || c == ']' || c == '\\') {
      r.Fail(at, path, absl::StrCat("bad glob \"", glob, "\": only * and ? are special, '", std::string(1, c),
                                    "' is not allowed"));
    }
  }
}

std::vector<std::string> Globs(Reader& r, const YAML::Node& node, const std::string& path) {
  std::vector<std::string> globs;
  const std::vector<YAML::Node> items = r.List(node, path);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string at = absl::StrCat(path, "[", i, "]");
    globs.push_back(r.String(items[i], at));
    CheckGlob(r, items[i], at, globs.back());
  }
  return globs;
}

Binding ReadBinding(Reader& r, const YAML::Node& node, const std::string& path) {
  Binding b;
  bool has_subjects = false, has_role = false;
  for (const auto& [key, value] : r.Map(node, path, {"subjects", "role", "applications", "environments"})) {
    const std::string at = absl::StrCat(path, ".", key);
    if (key == "subjects") {
      has_subjects = true;
      const std::vector<YAML::Node> items = r.List(value, at);
      if (items.empty()) r.Fail(value, at, "must name at least one subject");
      for (size_t i = 0; i < items.size(); ++i) {
        const std::string item_at = absl::StrCat(at, "[", i, "]");
        b.subjects.push_back(r.String(items[i], item_at));
        CheckSubject(r, items[i], item_at, b.subjects.back());
      }
    } else if (key == "role") {
      has_role = true;
      b.role = r.String(value, at);
      if (std::find(std::begin(kRoles), std::end(kRoles), b.role) == std::end(kRoles)) {
        r.Fail(value, at, absl::StrCat("unknown role \"", b.role, "\" (expected viewer, operator, approver, ci or admin)"));
      }
    } else if (key == "applications") {
      b.applications = Globs(r, value, at);
    } else {
      b.environments = Globs(r, value, at);
    }
  }
  if (!has_subjects) r.Fail(node, path, "missing key \"subjects\"");
  if (!has_role) r.Fail(node, path, "missing key \"role\"");
  return b;
}

ApprovalRule ReadApprovalRule(Reader& r, const YAML::Node& node, const std::string& path) {
  ApprovalRule rule;
  for (const auto& [key, value] : r.Map(node, path, {"required", "distinct_from_author", "distinct_from_requester"})) {
    const std::string at = absl::StrCat(path, ".", key);
    if (key == "required") {
      rule.required = r.Int(value, at);
      if (rule.required < 1) r.Fail(value, at, absl::StrCat("must be at least 1, not ", rule.required));
    } else if (key == "distinct_from_author") {
      rule.distinct_from_author = r.Bool(value, at);
    } else {
      rule.distinct_from_requester = r.Bool(value, at);
    }
  }
  return rule;
}

// http:// only to the local machine (a development JWKS server); otherwise
// https://, so nobody on the path can swap the keys.
bool AcceptableJwksUrl(absl::string_view url) {
  if (absl::StartsWith(url, "https://")) return url.size() > 8;
  if (!absl::ConsumePrefix(&url, "http://")) return false;
  for (absl::string_view host : {"localhost", "127.0.0.1", "[::1]"}) {
    absl::string_view rest = url;
    if (absl::ConsumePrefix(&rest, host) && (rest.empty() || rest[0] == ':' || rest[0] == '/')) return true;
  }
  return false;
}

OidcIssuer ReadIssuer(Reader& r, const YAML::Node& node, const std::string& path) {
  OidcIssuer issuer;
  bool has_issuer = false, has_audience = false;
  const YAML::Node* jwks_file = nullptr;
  const YAML::Node* jwks_url = nullptr;
  const auto entries = r.Map(node, path,
                             {"issuer", "audience", "jwks_file", "jwks_url", "username_claim", "groups_claim",
                              "clock_skew"});
  for (const auto& [key, value] : entries) {
    const std::string at = absl::StrCat(path, ".", key);
    if (key == "issuer") {
      has_issuer = true;
      issuer.issuer = r.String(value, at);
    } else if (key == "audience") {
      has_audience = true;
      issuer.audience = r.String(value, at);
    } else if (key == "jwks_file") {
      jwks_file = &value;
      issuer.jwks_file = r.String(value, at);
    } else if (key == "jwks_url") {
      jwks_url = &value;
      issuer.jwks_url = r.String(value, at);
      if (!AcceptableJwksUrl(issuer.jwks_url)) {
        r.Fail(value, at,
               absl::StrCat("\"", issuer.jwks_url, "\" must be an https:// URL (http:// only to localhost)"));
      }
    } else if (key == "username_claim") {
      issuer.username_claim = r.String(value, at);
    } else if (key == "groups_claim") {
      issuer.groups_claim = r.String(value, at);
    } else {
      const std::string text = r.String(value, at);
      absl::Duration skew;
      if (!absl::ParseDuration(text, &skew) || skew == absl::InfiniteDuration() || skew == -absl::InfiniteDuration()) {
        r.Fail(value, at, absl::StrCat("\"", text, "\" is not a duration (such as 60s or 2m)"));
      }
      if (skew < absl::ZeroDuration() || skew > kMaxClockSkew) {
        r.Fail(value, at, absl::StrCat("must be between 0s and ", absl::FormatDuration(kMaxClockSkew), ", not ", text));
      }
      issuer.clock_skew = skew;
    }
  }
  if (!has_issuer) r.Fail(node, path, "missing key \"issuer\"");
  if (!has_audience) r.Fail(node, path, "missing key \"audience\"");
  if (jwks_file == nullptr && jwks_url == nullptr) {
    r.Fail(node, path, absl::StrCat("issuer \"", issuer.issuer, "\" needs a JWKS: jwks_file or jwks_url"));
  }
  if (jwks_file != nullptr && jwks_url != nullptr) {
    r.Fail(*jwks_url, path, "has both jwks_file and jwks_url; give exactly one");
  }
  return issuer;
}

}  // namespace

const char* PermissionName(Permission p) {
  switch (p) {
    case Permission::kView:
      return "view";
    case Permission::kOperate:
      return "operate";
    case Permission::kApprove:
      return "approve";
    case Permission::kReportChecks:
      return "report-checks";
    case Permission::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Parse(const std::string& text, const std::string& source) {
  if (text.size() > kMaxPolicyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": the policy is ", text.size(), " bytes, more than the ", kMaxPolicyBytes, " allowed"));
  }
  auto policy = std::shared_ptr<Policy>(new Policy());
  Reader r;
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.size() > 1) {
      r.Fail(documents[1], "", "more than one YAML document; the policy is one mapping");
    }
    if (documents.empty() || documents[0].IsNull()) return std::shared_ptr<const Policy>(std::move(policy));
    const YAML::Node& root = documents[0];
    std::set<std::string> issuers;
    for (const auto& [key, value] : r.Map(root, "", {"bindings", "approvals", "oidc"})) {
      if (key == "bindings") {
        const std::vector<YAML::Node> items = r.List(value, "bindings");
        for (size_t i = 0; i < items.size(); ++i) {
          policy->bindings_.push_back(ReadBinding(r, items[i], absl::StrCat("bindings[", i, "]")));
        }
      } else if (key == "approvals") {
        for (const auto& [environment, rule] : r.Map(value, "approvals", {})) {
          const std::string at = absl::StrCat("approvals.", environment);
          if (absl::StrContains(environment, '*') || absl::StrContains(environment, '?')) {
            r.Fail(rule, at, "environment names here are exact, not globs");
          }
          if (environment.empty() || HasControlCharacter(environment)) r.Fail(rule, at, "is not an environment name");
          policy->approvals_[environment] = ReadApprovalRule(r, rule, at);
        }
      } else {
        const std::vector<YAML::Node> items = r.List(value, "oidc");
        for (size_t i = 0; i < items.size(); ++i) {
          const std::string at = absl::StrCat("oidc[", i, "]");
          OidcIssuer issuer = ReadIssuer(r, items[i], at);
          if (!issuers.insert(issuer.issuer).second) {
            r.Fail(items[i], at, absl::StrCat("issuer \"", issuer.issuer, "\" is listed twice"));
          }
          policy->issuers_.push_back(std::move(issuer));
        }
      }
    }
  } catch (const Problem& p) {
    return absl::InvalidArgumentError(
        p.line > 0 ? absl::StrCat(source, ":", p.line, ": ", p.message) : absl::StrCat(source, ": ", p.message));
  } catch (const YAML::DeepRecursion& e) {
    const std::string where = e.mark.is_null() ? source : absl::StrCat(source, ":", e.mark.line + 1);
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": nested deeper than the YAML parser allows (", e.depth(), " levels)"));
  } catch (const YAML::Exception& e) {
    const std::string where = e.mark.is_null() ? source : absl::StrCat(source, ":", e.mark.line + 1);
    return absl::InvalidArgumentError(absl::StrCat(where, ": malformed YAML: ", e.msg));
  } catch (const std::exception& e) {  // std::bad_alloc: the file fails, not the process
    return absl::InvalidArgumentError(absl::StrCat(source, ": cannot read the policy: ", e.what()));
  }
  return std::shared_ptr<const Policy>(std::move(policy));
}

namespace {

// Whether `subject` ("user:alice") names `p`. A service acting for a user is
// matched as the service.
bool SubjectMatches(absl::string_view subject, const Principal& p) {
  if (absl::ConsumePrefix(&subject, "group:")) {
    return std::find(p.groups.begin(), p.groups.end(), subject) != p.groups.end();
  }
  if (absl::ConsumePrefix(&subject, "user:")) return p.kind == PrincipalKind::kUser && subject == p.id;
  if (absl::ConsumePrefix(&subject, "service:")) return p.kind == PrincipalKind::kService && subject == p.id;
  return false;
}

// Whether a binding's globs for one field cover `name`; an empty `name` (a
// resource of no application or environment) only by an empty list or "*".
bool FieldMatches(const std::vector<std::string>& globs, const std::string& name) {
  if (globs.empty()) return true;
  if (name.empty()) return std::find(globs.begin(), globs.end(), "*") != globs.end();
  for (const std::string& glob : globs) {
    if (fnmatch(glob.c_str(), name.c_str(), 0) == 0) return true;
  }
  return false;
}

}  // namespace

bool Policy::Allows(const Principal& p, Permission permission, const Scope& scope) const {
  if (p.kind == PrincipalKind::kAnonymous) return false;
  for (const Binding& b : bindings_) {
    if (!RoleGrants(b.role, permission)) continue;
    if (!scope.any && (!FieldMatches(b.applications, scope.application) ||
                       !FieldMatches(b.environments, scope.environment))) {
      continue;
    }
    for (const std::string& subject : b.subjects) {
      if (SubjectMatches(subject, p)) return true;
    }
  }
  return false;
}

ApprovalRule Policy::ApprovalRuleFor(const std::string& environment) const {
  auto it = approvals_.find(environment);
  return it == approvals_.end() ? ApprovalRule{} : it->second;
}

}  // namespace ferry::auth
