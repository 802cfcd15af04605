// DriftPolicy (drift settings) against the in-memory store.
#include "services/deployer/drift_policy.h"

#include <gtest/gtest.h>

#include "tests/deployer/fake_deployment_store.h"

namespace ferry::deployer {
namespace {

class DriftPolicyTest : public ::testing::Test {
 protected:
  testing::FakeDeploymentStore store_;
  DriftPolicy policy_{&store_, absl::Seconds(30)};
};

TEST_F(DriftPolicyTest, NothingStoredMeansTheDefaults) {
  absl::StatusOr<v1::DriftSettings> s = policy_.Get("web", "dev");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->disabled());
  EXPECT_EQ(FromProtoDuration(s->interval()), absl::Seconds(30));
  EXPECT_EQ(FromProtoDuration(s->heal_backoff().initial()), absl::Seconds(5));
  EXPECT_EQ(FromProtoDuration(s->heal_backoff().max()), absl::Minutes(5));
  EXPECT_EQ(s->heal_backoff().factor(), 2);
}

TEST_F(DriftPolicyTest, AnApplicationsOwnSettingsOverrideTheGlobalOnesFieldByField) {
  v1::UpdateDriftSettingsRequest global;
  *global.mutable_settings()->mutable_interval() = ToProtoDuration(absl::Minutes(2));
  global.mutable_settings()->set_disabled(true);
  ASSERT_TRUE(policy_.Update(global).ok());
  v1::UpdateDriftSettingsRequest own;
  own.mutable_settings()->set_application_id("web");
  own.mutable_settings()->set_environment_id("dev");
  own.mutable_settings()->mutable_heal_backoff()->set_factor(3);
  own.mutable_update_mask()->add_paths("heal_backoff");
  ASSERT_TRUE(policy_.Update(own).ok());
  absl::StatusOr<v1::DriftSettings> s = policy_.Get("web", "dev");
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->disabled()) << "the global switch was lost";
  EXPECT_EQ(FromProtoDuration(s->interval()), absl::Minutes(2));
  EXPECT_EQ(s->heal_backoff().factor(), 3);
  EXPECT_EQ(FromProtoDuration(s->heal_backoff().initial()), absl::Seconds(5));
}

// The drift check's shortcut gives what the full merge gives, for every
// combination of stored global and own settings.
TEST_F(DriftPolicyTest, TheMergedIntervalAndSwitchAreThoseOfTheFullMerge) {
  std::vector<std::optional<v1::DriftSettings>> choices = {std::nullopt};
  for (bool disabled : {false, true}) {
    for (int interval_s : {0, 45, 600}) {
      v1::DriftSettings s;
      s.set_disabled(disabled);
      if (interval_s > 0) *s.mutable_interval() = ToProtoDuration(absl::Seconds(interval_s));
      choices.push_back(s);
    }
  }
  int compared = 0;
  for (const auto& global : choices) {
    for (const auto& own : choices) {
      v1::DriftSettings merged = policy_.Merge(global, own, "web", "dev");
      EXPECT_EQ(policy_.MergedInterval(global, own), FromProtoDuration(merged.interval()));
      EXPECT_EQ(DriftPolicy::MergedDisabled(global, own), merged.disabled());
      ++compared;
    }
  }
  EXPECT_EQ(compared, 49);
}

TEST_F(DriftPolicyTest, APartialUpdateKeepsTheOtherStoredFields) {
  v1::UpdateDriftSettingsRequest first;
  first.mutable_settings()->set_application_id("web");
  first.mutable_settings()->set_environment_id("dev");
  first.mutable_settings()->set_disabled(true);
  *first.mutable_settings()->mutable_interval() = ToProtoDuration(absl::Minutes(1));
  ASSERT_TRUE(policy_.Update(first).ok());
  v1::UpdateDriftSettingsRequest second;
  second.mutable_settings()->set_application_id("web");
  second.mutable_settings()->set_environment_id("dev");
  *second.mutable_settings()->mutable_interval() = ToProtoDuration(absl::Minutes(7));
  second.mutable_update_mask()->add_paths("interval");
  absl::StatusOr<v1::DriftSettings> s = policy_.Update(second);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->disabled());
  EXPECT_EQ(FromProtoDuration(s->interval()), absl::Minutes(7));
}

TEST_F(DriftPolicyTest, InvalidSettingsAreRefusedAndNothingIsSaved) {
  v1::UpdateDriftSettingsRequest half;
  half.mutable_settings()->set_application_id("web");
  EXPECT_EQ(policy_.Update(half).status().code(), absl::StatusCode::kInvalidArgument);
  v1::UpdateDriftSettingsRequest fast;
  *fast.mutable_settings()->mutable_interval() = ToProtoDuration(absl::Milliseconds(500));
  EXPECT_EQ(policy_.Update(fast).status().code(), absl::StatusCode::kInvalidArgument);
  v1::UpdateDriftSettingsRequest negative;
  negative.mutable_settings()->mutable_heal_backoff()->set_factor(-1);
  EXPECT_EQ(policy_.Update(negative).status().code(), absl::StatusCode::kInvalidArgument);
  v1::UpdateDriftSettingsRequest unknown;
  unknown.mutable_update_mask()->add_paths("colour");
  EXPECT_EQ(policy_.Update(unknown).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_.GetDriftSettings("", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(policy_.Get("web", "").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DriftPolicyTest, AFailedReadIsAnErrorNotTheDefaults) {
  store_.FailDriftSettings(absl::UnavailableError("database down"));
  EXPECT_EQ(policy_.Get("web", "dev").status().code(), absl::StatusCode::kUnavailable);
  v1::UpdateDriftSettingsRequest update;
  update.mutable_settings()->set_disabled(true);
  EXPECT_EQ(policy_.Update(update).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ferry::deployer
