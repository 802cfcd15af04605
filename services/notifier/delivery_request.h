#pragma once

#include <cstdint>
#include <string>

#include "ferry/v1/notifier.pb.h"

namespace ferry::notifier {

// One delivery to make: what the ingester hands the store, in the same
// transaction that moves the audit cursor past its event. `request` is a
// JSON document saying how to send it (kind, URL or SMTP server, references
// to the secrets, the body); it holds no secret value: secrets are read when
// sending, from the notifier's secret sources.
struct NewDelivery {
  std::string subscription;  // the subscription's name, or "commit-status/<repository>"
  v1::NotificationEvent event = v1::NOTIFICATION_EVENT_UNSPECIFIED;
  std::string target;   // for people: "webhook https://host", "github commit status <sha> ferry/prod"
  std::string request;  // the JSON document above
};

// A delivery that is due, as the delivery worker claims it.
struct DueDelivery {
  int64_t id = 0;
  int64_t event_sequence = 0;
  std::string subscription;
  int attempts = 0;  // including this one
  std::string request;
};

}  // namespace ferry::notifier
