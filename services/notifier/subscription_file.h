#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/v1/notifier.pb.h"

namespace ferry::notifier {

// The subscriptions of a configuration file (--subscriptions-file;
// docs/notifier.md shows the format):
//
//   subscriptions:
//     - name: prod-failures
//       application: web            # optional
//       environment: prod           # optional
//       events: [deployment_failed, deployment_rolled_back]
//       template: "{{application}} failed in {{environment}}: {{message}}"
//       sink:
//         kind: slack               # webhook | slack | teams | email
//         url_secret: {env: FERRY_SECRET_SLACK_URL}
//
// Each is checked as CreateSubscription checks one; INVALID_ARGUMENT names
// the file, the entry and the field. Unknown keys are refused (a typo must
// not silently drop a filter).
absl::StatusOr<std::vector<v1::Subscription>> ParseSubscriptionFile(const std::string& yaml_text,
                                                                    const std::string& file_name);

}  // namespace ferry::notifier
