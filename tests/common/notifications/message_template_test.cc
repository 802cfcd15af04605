#include "common/notifications/message_template.h"

#include <gtest/gtest.h>

namespace ferry::notifications {
namespace {

TEST(MessageTemplate, RendersKnownPlaceholders) {
  auto t = MessageTemplate::Parse("{{application}} in {{ environment }}: {{message}} ({{short_commit}})", "template");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->Render({{"application", "web"}, {"environment", "prod"}, {"message", "boom"}, {"short_commit", "abc"}}),
            "web in prod: boom (abc)");
}

TEST(MessageTemplate, MissingValueRendersEmpty) {
  auto t = MessageTemplate::Parse("[{{plan}}]", "template");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->Render({}), "[]");
}

TEST(MessageTemplate, RefusesUnknownPlaceholderNamingTheField) {
  auto t = MessageTemplate::Parse("{{secrets}}", "subscription.template");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(t.status().message().find("subscription.template: unknown placeholder {{secrets}}"), std::string::npos)
      << t.status();
}

TEST(MessageTemplate, RefusesUnclosedPlaceholder) {
  auto t = MessageTemplate::Parse("hello {{message", "template");
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("never closed"), std::string::npos);
}

TEST(MessageTemplate, RefusesOversizedTemplate) {
  EXPECT_FALSE(MessageTemplate::Parse(std::string(kMaxTemplateBytes + 1, 'x'), "template").ok());
  EXPECT_TRUE(MessageTemplate::Parse(std::string(kMaxTemplateBytes, 'x'), "template").ok());
}

TEST(MessageTemplate, BoundsTheRenderedMessage) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "{{message}}";
  auto t = MessageTemplate::Parse(text, "template");
  ASSERT_TRUE(t.ok());
  std::string rendered = t->Render({{"message", std::string(1000, 'y')}});
  EXPECT_LE(rendered.size(), kMaxRenderedBytes);
  EXPECT_GE(rendered.size(), kMaxRenderedBytes - 4);
}

}  // namespace
}  // namespace ferry::notifications
