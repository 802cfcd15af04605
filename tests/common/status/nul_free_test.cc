#include "common/status/nul_free.h"

#include <gtest/gtest.h>

#include <string>

#include "ferry/v1/audit.pb.h"

namespace ferry {
namespace {

const std::string kNul("a\0b", 3);

TEST(NulFreeTest, CleanMessagesPass) {
  v1::AppendBatchRequest req;
  v1::Event* e = req.add_events();
  e->set_message("deployed");
  (*e->mutable_details()->mutable_fields())["step"].set_string_value("apply");
  EXPECT_TRUE(RejectNulInStrings(req).ok());
  EXPECT_TRUE(RejectNulInStrings(v1::AppendBatchRequest()).ok());
}

TEST(NulFreeTest, NamesTheFieldAnywhereInTheMessage) {
  struct Case {
    v1::AppendBatchRequest req;
    std::string path;
  };
  std::vector<Case> cases(5);
  cases[0].req.add_events()->set_service(kNul);
  cases[0].path = "events[0].service";
  cases[1].req.add_events();
  cases[1].req.add_events()->mutable_subject()->set_application_id(kNul);
  cases[1].path = "events[1].subject.application_id";
  (*cases[2].req.add_events()->mutable_details()->mutable_fields())["step"].set_string_value(kNul);
  cases[2].path = "events[0].details.fields[step].string_value";
  (*cases[3].req.add_events()->mutable_details()->mutable_fields())[kNul].set_number_value(1);
  cases[3].path = "events[0].details.fields (a key)";
  (*cases[4].req.add_events()->mutable_details()->mutable_fields())["list"]
      .mutable_list_value()
      ->add_values()
      ->set_string_value(kNul);
  cases[4].path = "events[0].details.fields[list].list_value.values[0].string_value";
  for (const Case& c : cases) {
    absl::Status s = RejectNulInStrings(c.req);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.path;
    EXPECT_EQ(s.message(), c.path + ": " + kNulInText);
  }
}

}  // namespace
}  // namespace ferry
