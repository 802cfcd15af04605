// Bounded reading of manifests (issue 15): every budget of ParseLimits is
// refused with a render failure naming the file, the line, the limit and its
// flag, quickly and in little memory; real-sized input still parses.
#include "services/planner/manifest_parser.h"

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "services/planner/render_failure.h"

namespace ferry::planner {
namespace {

using nlohmann::json;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

// The classic "billion laughs": nine levels of nine aliases, 9^9 (387
// million) strings once expanded, from a file of 409 bytes.
std::string BillionLaughs() {
  std::string s = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n";
  s += "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'i'; ++c) {
    char p = static_cast<char>(c - 1);
    s += absl::StrCat(std::string(1, c), ": &", std::string(1, c), " [");
    for (int i = 0; i < 9; ++i) s += absl::StrCat(i ? "," : "", "*", std::string(1, p));
    s += "]\n";
  }
  s += "data:\n  x: *i\n";
  return s;
}

int64_t MaxRssKiB() {
  struct rusage u {};
  ::getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

int64_t VirtualBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0;
  in >> pages;
  return pages * ::sysconf(_SC_PAGESIZE);
}

// Runs in a forked child (EXPECT_EXIT): address space capped at what it has
// plus 512 MiB, so a blow-up ends this child, not the machine. Exits 0 when
// the plan failure names the limit quickly and the peak RSS grew by less
// than 100 MiB; prints what happened either way.
[[noreturn]] void ParseBillionLaughsInBoundedChild() {
  if (!kAddressSanitizer) {  // ASan reserves terabytes of address space
    struct rlimit cap {};
    cap.rlim_cur = cap.rlim_max = static_cast<rlim_t>(VirtualBytes() + (int64_t{512} << 20));
    ::setrlimit(RLIMIT_AS, &cap);
  }
  const std::string file = BillionLaughs();
  const int64_t rss_before = MaxRssKiB();
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::vector<v1::Manifest>> m = ParseManifests(file, "apps/x/deploy.yaml");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t grown_mib = (MaxRssKiB() - rss_before) / 1024;
  std::string message = m.ok() ? "parsed" : std::string(m.status().message());
  std::fprintf(stderr, "file %zu bytes; %s; %.2f s; peak RSS +%lld MiB\n", file.size(), message.c_str(), seconds,
               static_cast<long long>(grown_mib));
  bool ok = !m.ok() && IsRenderFailure(m.status()) &&
            message.find("apps/x/deploy.yaml:") == 0 &&
            message.find("more than 1000000 YAML nodes after alias expansion (limit --max-yaml-nodes)") !=
                std::string::npos &&
            seconds < 10 && grown_mib < 100;
  std::_Exit(ok ? 0 : 1);
}

TEST(ManifestParserLimitsTest, BillionLaughsFailsItsFileQuicklyInLittleMemory) {
  // Before: the aliases were expanded while converting to JSON (24 GB, OOM
  // killer); in this capped child the old code ran out of address space
  // and failed with "std::bad_alloc" (or was killed), not this message.
  ASSERT_LT(BillionLaughs().size(), 1100u);
  EXPECT_EXIT(ParseBillionLaughsInBoundedChild(), ::testing::ExitedWithCode(0),
              "more than 1000000 YAML nodes after alias expansion");
}

TEST(ManifestParserLimitsTest, TheNodeBudgetIsChargedBeforeAnAliasIsExpanded) {
  // Three levels of ten aliases: 1,000 strings once expanded. With a budget
  // of 500 the refusal comes at the alias that would pass it (line 6), not
  // after expanding.
  ManifestBudget budget;
  budget.limits.max_yaml_nodes = 500;
  std::string file =
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
      "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n";
  auto m = ParseManifests(file, "apps/x/a.yaml", budget);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m.status().message(),
            "apps/x/a.yaml:6: more than 500 YAML nodes after alias expansion (limit --max-yaml-nodes)");
  EXPECT_EQ(ToPlanFailure(m.status()).line(), 6);
  EXPECT_EQ(ToPlanFailure(m.status()).path(), "apps/x/a.yaml");

  // Within the budget the aliases expand as before.
  ManifestBudget enough;
  auto ok = ParseManifests(file, "apps/x/a.yaml", enough);
  ASSERT_TRUE(ok.ok()) << ok.status();
  json o = json::parse((*ok)[0].json());
  ASSERT_EQ(o["c"].size(), 10u);
  EXPECT_EQ(o["c"][9][9][9], "x");
}

TEST(ManifestParserLimitsTest, ARecursiveAliasIsRefusedNotFollowedForever) {
  // yaml-cpp makes "&a [*a]" a node that contains itself; the old recursive
  // conversion followed it until the stack overflowed (SIGSEGV).
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &a [1, *a]\n",
                          "apps/x/loop.yaml");
  ASSERT_FALSE(m.ok());
  EXPECT_TRUE(IsRenderFailure(m.status()));
  EXPECT_NE(m.status().message().find("apps/x/loop.yaml:4: an alias refers to a node that contains it"),
            std::string::npos)
      << m.status();
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  out.reserve(s.size() * static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(ManifestParserLimitsTest, AHundredThousandLevelsOfNestingAreRefusedByDepth) {
  // Flow sequences, flow mappings and block sequences of 100,000 levels, in
  // .yaml and .json files: refused by depth, naming the flag, no crash.
  const int n = 100000;
  const std::string head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  k: ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"flow-seq.yaml", head + Repeat("[", n) + Repeat("]", n) + "\n"},
      {"flow-map.yaml", head + Repeat("{a: ", n) + "1" + Repeat("}", n) + "\n"},
      {"block-seq.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n" + Repeat("- ", n) + "1\n"},
      {"nested.json", R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": )" +
                          Repeat("[", n) + Repeat("]", n) + "}"},
      {"nested-map.json", R"({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": )" +
                              Repeat(R"({"a":)", n) + "1" + Repeat("}", n) + "}"},
  };
  for (const auto& [name, text] : cases) {
    auto m = ParseManifests(text, "apps/x/" + name);
    ASSERT_FALSE(m.ok()) << name;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kResourceExhausted) << name << ": " << m.status();
    EXPECT_NE(m.status().message().find("apps/x/" + name + ":"), std::string::npos) << m.status();
    EXPECT_NE(m.status().message().find("(limit --max-yaml-depth)"), std::string::npos) << m.status();
  }
}

TEST(ManifestParserLimitsTest, DepthWithinTheLimitParsesAndAnAliasCannotDeepenPastIt) {
  ManifestBudget budget;
  budget.limits.max_depth = 10;
  const std::string head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
  // The object is level 1: nine more levels fit.
  auto fits = ParseManifests(head + "data: " + Repeat("[", 9) + Repeat("]", 9) + "\n", "a.yaml", budget);
  EXPECT_TRUE(fits.ok()) << fits.status();
  ManifestBudget b2(budget.limits);
  auto deeper = ParseManifests(head + "data: " + Repeat("[", 10) + Repeat("]", 10) + "\n", "a.yaml", b2);
  ASSERT_FALSE(deeper.ok());
  EXPECT_NE(deeper.status().message().find("a.yaml:4: nesting deeper than 10 levels (limit --max-yaml-depth)"),
            std::string::npos)
      << deeper.status();
  // An anchor of 8 levels at the top is fine; its alias 3 levels down is not.
  ManifestBudget b3(budget.limits);
  auto aliased = ParseManifests(head + "deep: &d " + Repeat("[", 8) + Repeat("]", 8) + "\nx: [[[*d]]]\n", "a.yaml", b3);
  ASSERT_FALSE(aliased.ok());
  EXPECT_NE(aliased.status().message().find("a.yaml:5: nesting deeper"), std::string::npos) << aliased.status();
}

TEST(ManifestParserLimitsTest, AnOverlongScalarIsRefused) {
  ManifestBudget budget;
  budget.limits.max_scalar_bytes = 1000;
  auto m = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  big: " + std::string(1001, 'x') +
                              "\n",
                          "apps/x/big.yaml", budget);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(),
            "apps/x/big.yaml:5: a scalar of 1001 bytes, more than 1000 (limit --max-yaml-scalar-bytes)");
  // The default (4 MiB) takes a 1 MiB value.
  auto ok = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  big: " +
                               std::string(1 << 20, 'x') + "\n",
                           "apps/x/big.yaml");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(ManifestParserLimitsTest, AnAliasedLargeScalarCannotMultiplyTheBytes) {
  // 1,000 aliases of a 100 KB scalar: 100 MB once expanded, from 104 KB.
  std::string file = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\nbig: &s " + std::string(100000, 'x') +
                     "\ndata: [" + Repeat("*s,", 999) + "*s]\n";
  ManifestBudget budget;
  budget.limits.max_manifest_bytes = 10 << 20;
  auto m = ParseManifests(file, "apps/x/a.yaml", budget);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("apps/x/a.yaml:5: the application's manifests pass 10485760 bytes"),
            std::string::npos)
      << m.status();
  EXPECT_NE(m.status().message().find("(limit --max-manifest-bytes-per-app)"), std::string::npos);
}

std::string ConfigMaps(int n, int first = 0) {
  std::string s;
  for (int i = first; i < first + n; ++i) {
    s += absl::StrCat("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-", i,
                      "\n  labels: {app: web, tier: backend}\ndata:\n  key: value-", i, "\n  port: \"8080\"\n");
  }
  return s;
}

TEST(ManifestParserLimitsTest, TooManyDocumentsInOneFileAreRefused) {
  ManifestBudget budget;
  budget.limits.max_documents = 10;
  auto m = ParseManifests(ConfigMaps(11), "apps/x/many.yaml", budget);
  ASSERT_FALSE(m.ok());
  // Document 11 starts after its "---" line: 9 lines per document.
  EXPECT_EQ(m.status().message(), "apps/x/many.yaml:92: more than 10 YAML documents in one file (limit --max-yaml-documents)");
  // Empty and comment-only documents do not count.
  ManifestBudget b2(budget.limits);
  auto ok = ParseManifests(ConfigMaps(10) + "---\n# nothing\n---\n---\n", "apps/x/many.yaml", b2);
  EXPECT_TRUE(ok.ok()) << ok.status();
}

TEST(ManifestParserLimitsTest, TheObjectAndByteBudgetsAreTheApplicationsAcrossFiles) {
  ManifestBudget budget;
  budget.limits.max_objects = 15;
  ASSERT_TRUE(ParseManifests(ConfigMaps(10), "apps/x/a.yaml", budget).ok());
  EXPECT_EQ(budget.objects, 10);
  auto m = ParseManifests(ConfigMaps(10, 10), "apps/x/b.yaml", budget);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().message(),
            "apps/x/b.yaml:47: ConfigMap cm-15: the application has more than 15 objects (limit --max-objects-per-app)");

  // A List's items count one each.
  ManifestBudget list_budget;
  list_budget.limits.max_objects = 2;
  auto list = ParseManifests(
      "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n"
      "- {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}\n",
      "apps/x/list.yaml", list_budget);
  ASSERT_FALSE(list.ok());
  EXPECT_NE(list.status().message().find("more than 2 objects"), std::string::npos) << list.status();

  ManifestBudget bytes;
  bytes.limits.max_manifest_bytes = 2000;
  ASSERT_TRUE(ParseManifests(ConfigMaps(10), "apps/x/a.yaml", bytes).ok());  // ~1,300 bytes of JSON
  auto too_big = ParseManifests(ConfigMaps(10, 10), "apps/x/b.yaml", bytes);
  ASSERT_FALSE(too_big.ok());
  EXPECT_NE(too_big.status().message().find("apps/x/b.yaml:"), std::string::npos) << too_big.status();
  EXPECT_NE(too_big.status().message().find("the application's manifests pass 2000 bytes"), std::string::npos)
      << too_big.status();
  EXPECT_NE(too_big.status().message().find("(limit --max-manifest-bytes-per-app)"), std::string::npos);
}

TEST(ManifestParserLimitsTest, TenThousandObjectsPassWithTheDefaults) {
  // A large real application: 10,000 objects in 10 files of 1,000
  // documents, each with labels and data, under the default limits.
  ManifestBudget budget;
  size_t total = 0;
  for (int f = 0; f < 10; ++f) {
    auto m = ParseManifests(ConfigMaps(1000, f * 1000), absl::StrCat("apps/big/part-", f, ".yaml"), budget);
    ASSERT_TRUE(m.ok()) << m.status();
    total += m->size();
  }
  EXPECT_EQ(total, 10000u);
  EXPECT_EQ(budget.objects, 10000);
  // One more object is one too many.
  auto m = ParseManifests(ConfigMaps(1, 10000), "apps/big/extra.yaml", budget);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("more than 10000 objects (limit --max-objects-per-app)"), std::string::npos);
}

TEST(ManifestParserLimitsTest, TheNodeBudgetIsPerDocumentSoALargeStreamOfSmallObjectsPasses) {
  // A tool's output is one stream: 100 objects of ~40 nodes each pass a
  // budget of 1,000 nodes per document (an application of 10,000 objects in
  // one helm output passes the default), while one document over it fails.
  ManifestBudget budget;
  budget.limits.max_yaml_nodes = 1000;
  auto m = ParseManifests(ConfigMaps(100), "apps/x/helm-output", budget);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size(), 100u);
  std::string big = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata: [";
  for (int i = 0; i < 1000; ++i) big += "x,";
  ManifestBudget b2(budget.limits);
  auto refused = ParseManifests(big + "x]\n", "apps/x/big.yaml", b2);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("more than 1000 YAML nodes"), std::string::npos) << refused.status();
}

TEST(ManifestParserLimitsTest, EmptyDocumentsCostNothing) {
  // 500,000 "---" lines: no document to read, none kept.
  std::string text = Repeat("---\n", 500000) + "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n";
  auto m = ParseManifests(text, "apps/x/sep.yaml");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->size(), 1u);
}

TEST(ManifestParserLimitsTest, AliasesAndKeysReadAsBefore) {
  // The event reader keeps the old conversion's results: aliases copy,
  // quoted scalars stay strings, "~" keys read "null", the last duplicate
  // key wins, a merge key "<<" is an ordinary key.
  auto m = ParseManifests(
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"
      "base: &b {port: 80, name: \"80\"}\n"
      "copy: *b\n"
      "~: nothing\n"
      "dup: 1\ndup: 2\n"
      "merged: {<<: *b}\n"
      "k: &k key\n"
      "keyed: {*k : 3}\n",
      "a.yaml");
  ASSERT_TRUE(m.ok()) << m.status();
  json o = json::parse((*m)[0].json());
  EXPECT_EQ(o["copy"], o["base"]);
  EXPECT_EQ(o["copy"]["port"], 80);
  EXPECT_EQ(o["copy"]["name"], "80");
  EXPECT_EQ(o["null"], "nothing");
  EXPECT_EQ(o["dup"], 2);
  EXPECT_EQ(o["merged"]["<<"]["port"], 80);
  EXPECT_EQ(o["keyed"]["key"], 3);
  auto bad_key = ParseManifests("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n? [a]\n: 1\n", "a.yaml");
  ASSERT_FALSE(bad_key.ok());
  EXPECT_NE(bad_key.status().message().find("a mapping key must be a scalar"), std::string::npos) << bad_key.status();
}

}  // namespace
}  // namespace ferry::planner
