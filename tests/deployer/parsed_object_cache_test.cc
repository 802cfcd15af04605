// ParsedObjectCache: what it serves is what ParseHostObject gives, and it
// stays within its bound.
#include "services/deployer/host/parsed_object_cache.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/deployer/test_util.h"

namespace ferry::deployer::host {
namespace {

std::string File(const std::string& name, const std::string& content) {
  return testing::ConfigFile(name, absl::StrCat("etc/", name, ".conf"), content).dump();
}

TEST(ParsedObjectCacheTest, TheSameObjectIsParsedOnceAndServedAsParsed) {
  ParsedObjectCache cache;
  const std::string json = File("conf", "x=1\n");
  auto first = cache.Parse(json, "apps/web/conf.yaml");
  ASSERT_TRUE(first.ok()) << first.status();
  auto again = cache.Parse(json, "apps/web/conf.yaml");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(first->get(), again->get()) << "parsed again";
  absl::StatusOr<HostObject> direct = ParseHostObject(json, "apps/web/conf.yaml");
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ((*again)->where, direct->where);
  EXPECT_EQ((*again)->doc, direct->doc);
  ASSERT_TRUE((*again)->file.has_value());
  EXPECT_EQ((*again)->file->path, "etc/conf.conf");
  EXPECT_EQ((*again)->file->content, "x=1\n");
  EXPECT_EQ(cache.size(), 1u);
}

// The source path is part of what was parsed (errors and `where` name it).
TEST(ParsedObjectCacheTest, AnotherSourcePathOrContentIsAnotherObject) {
  ParsedObjectCache cache;
  auto a = cache.Parse(File("conf", "x=1\n"), "a.yaml");
  auto b = cache.Parse(File("conf", "x=1\n"), "b.yaml");
  auto c = cache.Parse(File("conf", "x=2\n"), "a.yaml");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_NE(a->get(), b->get());
  EXPECT_EQ((*b)->where, ParseHostObject(File("conf", "x=1\n"), "b.yaml")->where);
  EXPECT_EQ((*c)->file->content, "x=2\n");
  auto a_again = cache.Parse(File("conf", "x=1\n"), "a.yaml");
  ASSERT_TRUE(a_again.ok());
  EXPECT_EQ((*a_again)->where, (*a)->where);
}

TEST(ParsedObjectCacheTest, ABadObjectFailsEveryTimeAndIsNotKept) {
  ParsedObjectCache cache;
  const std::string bad = R"({"apiVersion":"ferry.dev/v1","kind":"Gizmo","metadata":{"name":"g"}})";
  for (int i = 0; i < 2; ++i) {
    auto parsed = cache.Parse(bad, "apps/g.yaml");
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.status(), ParseHostObject(bad, "apps/g.yaml").status());
  }
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ParsedObjectCacheTest, ItKeepsNoMoreThanItsBound) {
  const std::string one = File("f0", std::string(100, 'x'));
  const size_t entry = one.size() + std::string("s.yaml").size();
  ParsedObjectCache cache(3 * entry + entry / 2);
  for (int i = 0; i < 10; ++i) {
    auto parsed = cache.Parse(File(absl::StrCat("f", i), std::string(100, 'x')), "s.yaml");
    ASSERT_TRUE(parsed.ok());
    EXPECT_LE(cache.bytes(), 3 * entry + entry / 2);
    EXPECT_GE(cache.size(), 1u);
  }
  // An object larger than the bound is parsed and served, not kept.
  auto big = cache.Parse(File("big", std::string(10 * entry, 'y')), "s.yaml");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ((*big)->file->content.size(), 10 * entry);
  EXPECT_LE(cache.bytes(), 3 * entry + entry / 2);
}

TEST(ParsedObjectCacheTest, ManyThreadsShareIt) {
  ParsedObjectCache cache(64 << 10);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&cache, t] {
      for (int i = 0; i < 500; ++i) {
        const std::string content = absl::StrCat("v=", (i + t) % 50, "\n");
        auto parsed = cache.Parse(File(absl::StrCat("f", i % 50), content), "s.yaml");
        ASSERT_TRUE(parsed.ok());
        EXPECT_EQ((*parsed)->file->content, content);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_LE(cache.bytes(), 64u << 10);
}

}  // namespace
}  // namespace ferry::deployer::host
