#include "services/notifier/subscription_file.h"

#include <set>

#include <yaml-cpp/yaml.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/notifications/subscription_rules.h"

namespace ferry::notifier {

using notifications::ValidateSubscription;
namespace {

absl::Status Bad(const std::string& where, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

absl::Status OnlyKeys(const YAML::Node& map, const std::set<std::string>& allowed, const std::string& where) {
  if (!map.IsMap()) return Bad(where, "must be a mapping");
  for (const auto& kv : map) {
    const std::string key = kv.first.as<std::string>();
    if (allowed.count(key) == 0) return Bad(where, absl::StrCat("unknown key \"", key.substr(0, 64), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Scalar(const YAML::Node& map, const char* key, const std::string& where) {
  YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return std::string();
  if (!n.IsScalar()) return Bad(absl::StrCat(where, ".", key), "must be a string");
  return n.as<std::string>();
}

absl::StatusOr<v1::SecretRef> Ref(const YAML::Node& map, const char* key, const std::string& where) {
  v1::SecretRef ref;
  YAML::Node n = map[key];
  if (!n.IsDefined() || n.IsNull()) return ref;
  const std::string w = absl::StrCat(where, ".", key);
  RETURN_IF_ERROR(OnlyKeys(n, {"file", "env", "vault"}, w));
  if (n.size() != 1) return Bad(w, "set exactly one of file, env, vault");
  if (n["file"]) {
    ASSIGN_OR_RETURN(*ref.mutable_file(), Scalar(n, "file", w));
  } else if (n["env"]) {
    ASSIGN_OR_RETURN(*ref.mutable_env(), Scalar(n, "env", w));
  } else {
    RETURN_IF_ERROR(OnlyKeys(n["vault"], {"path", "field"}, w + ".vault"));
    ASSIGN_OR_RETURN(*ref.mutable_vault()->mutable_path(), Scalar(n["vault"], "path", w + ".vault"));
    ASSIGN_OR_RETURN(*ref.mutable_vault()->mutable_field(), Scalar(n["vault"], "field", w + ".vault"));
  }
  return ref;
}

absl::StatusOr<v1::Subscription> One(const YAML::Node& n, const std::string& where) {
  RETURN_IF_ERROR(OnlyKeys(n, {"name", "application", "environment", "events", "template", "sink"}, where));
  v1::Subscription s;
  ASSIGN_OR_RETURN(*s.mutable_name(), Scalar(n, "name", where));
  ASSIGN_OR_RETURN(*s.mutable_application_id(), Scalar(n, "application", where));
  ASSIGN_OR_RETURN(*s.mutable_environment_id(), Scalar(n, "environment", where));
  ASSIGN_OR_RETURN(*s.mutable_template_(), Scalar(n, "template", where));
  YAML::Node events = n["events"];
  if (!events.IsSequence()) return Bad(where + ".events", "must be a list of event names");
  for (size_t i = 0; i < events.size(); ++i) {
    const std::string w = absl::StrCat(where, ".events[", i, "]");
    if (!events[i].IsScalar()) return Bad(w, "must be an event name");
    const std::string name = absl::AsciiStrToUpper(events[i].as<std::string>());
    v1::NotificationEvent e;
    if (!v1::NotificationEvent_Parse("NOTIFICATION_EVENT_" + name, &e) || e == v1::NOTIFICATION_EVENT_UNSPECIFIED) {
      return Bad(w, absl::StrCat("unknown event \"", events[i].as<std::string>().substr(0, 64),
                                 "\" (deployment_started, deployment_succeeded, deployment_failed, "
                                 "deployment_rolled_back, plan_waiting_for_approval, drift_detected, drift_healed, "
                                 "signature_rejected, webhook_rejected, access_denied)"));
    }
    s.add_events(e);
  }
  const std::string sw = where + ".sink";
  YAML::Node sink = n["sink"];
  RETURN_IF_ERROR(OnlyKeys(sink, {"kind", "url", "url_secret", "hmac_secret", "smtp_url", "smtp_username",
                                  "smtp_password", "from", "to"},
                           sw));
  v1::Sink* k = s.mutable_sink();
  ASSIGN_OR_RETURN(std::string kind, Scalar(sink, "kind", sw));
  v1::SinkKind sk;
  if (!v1::SinkKind_Parse("SINK_KIND_" + absl::AsciiStrToUpper(kind), &sk) || sk == v1::SINK_KIND_UNSPECIFIED) {
    return Bad(sw + ".kind", "one of webhook, slack, teams, email");
  }
  k->set_kind(sk);
  ASSIGN_OR_RETURN(*k->mutable_url(), Scalar(sink, "url", sw));
  ASSIGN_OR_RETURN(*k->mutable_url_secret(), Ref(sink, "url_secret", sw));
  ASSIGN_OR_RETURN(*k->mutable_hmac_secret(), Ref(sink, "hmac_secret", sw));
  ASSIGN_OR_RETURN(*k->mutable_smtp_url(), Scalar(sink, "smtp_url", sw));
  ASSIGN_OR_RETURN(*k->mutable_smtp_username(), Scalar(sink, "smtp_username", sw));
  ASSIGN_OR_RETURN(*k->mutable_smtp_password(), Ref(sink, "smtp_password", sw));
  ASSIGN_OR_RETURN(*k->mutable_from(), Scalar(sink, "from", sw));
  if (YAML::Node to = sink["to"]; to.IsDefined() && !to.IsNull()) {
    if (to.IsScalar()) {
      k->add_to(to.as<std::string>());
    } else if (to.IsSequence()) {
      for (size_t i = 0; i < to.size(); ++i) {
        if (!to[i].IsScalar()) return Bad(absl::StrCat(sw, ".to[", i, "]"), "must be an address");
        k->add_to(to[i].as<std::string>());
      }
    } else {
      return Bad(sw + ".to", "must be an address or a list of them");
    }
  }
  RETURN_IF_ERROR(ValidateSubscription(s, where));
  s.set_source("config");
  return s;
}

}  // namespace

absl::StatusOr<std::vector<v1::Subscription>> ParseSubscriptionFile(const std::string& yaml_text,
                                                                    const std::string& file_name) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Bad(file_name, absl::StrCat("not YAML: ", e.what()));
  }
  std::vector<v1::Subscription> out;
  try {
    if (root.IsNull()) return out;
    RETURN_IF_ERROR(OnlyKeys(root, {"subscriptions"}, file_name));
    YAML::Node subs = root["subscriptions"];
    if (!subs.IsDefined() || subs.IsNull()) return out;
    if (!subs.IsSequence()) return Bad(file_name + ": subscriptions", "must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < subs.size(); ++i) {
      ASSIGN_OR_RETURN(v1::Subscription s, One(subs[i], absl::StrCat(file_name, ": subscriptions[", i, "]")));
      if (!names.insert(s.name()).second) {
        return Bad(absl::StrCat(file_name, ": subscriptions[", i, "].name"), "\"" + s.name() + "\" is used twice");
      }
      out.push_back(std::move(s));
    }
  } catch (const YAML::Exception& e) {
    return Bad(file_name, absl::StrCat("bad YAML value: ", e.what()));
  }
  return out;
}

}  // namespace ferry::notifier
