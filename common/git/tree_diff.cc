#include "common/git/tree_diff.h"

#include <algorithm>
#include <set>
#include <string_view>

#include "absl/strings/str_cat.h"

namespace ferry::git {

int CompareInTreeOrder(const TreeItem& a, const TreeItem& b) {
  const std::string_view x = a.name, y = b.name;
  const size_t n = std::min(x.size(), y.size());
  int c = x.compare(0, n, y, 0, n);
  if (c != 0) return c;
  auto next = [n](std::string_view s, bool tree) -> int {
    if (s.size() > n) return static_cast<unsigned char>(s[n]);
    return tree ? '/' : 0;
  };
  return next(x, a.is_tree()) - next(y, b.is_tree());
}

namespace {

class Walk {
 public:
  explicit Walk(TreeReader& reader) : reader_(reader) {}

  absl::Status Compare(const std::string& prefix, const std::array<unsigned char, 20>& from,
                       const std::array<unsigned char, 20>& to) {
    if (from == to) return absl::OkStatus();
    absl::StatusOr<std::vector<TreeItem>> a = reader_.ReadTree(from);
    if (!a.ok()) return a.status();
    absl::StatusOr<std::vector<TreeItem>> b = reader_.ReadTree(to);
    if (!b.ok()) return b.status();
    size_t i = 0, j = 0;
    while (i < a->size() || j < b->size()) {
      int c = i == a->size() ? 1 : j == b->size() ? -1 : CompareInTreeOrder((*a)[i], (*b)[j]);
      if (c < 0) {
        absl::Status s = All(prefix, (*a)[i++]);
        if (!s.ok()) return s;
      } else if (c > 0) {
        absl::Status s = All(prefix, (*b)[j++]);
        if (!s.ok()) return s;
      } else {
        const TreeItem& x = (*a)[i++];
        const TreeItem& y = (*b)[j++];
        if (x.id == y.id && x.mode == y.mode) continue;
        if (x.is_tree()) {  // both are (the same key): compare what is under them
          absl::Status s = Compare(Join(prefix, x.name), x.id, y.id);
          if (!s.ok()) return s;
        } else {
          paths_.insert(Join(prefix, x.name));
        }
      }
    }
    return absl::OkStatus();
  }

  std::vector<std::string> Paths() const { return {paths_.begin(), paths_.end()}; }

 private:
  static std::string Join(const std::string& prefix, const std::string& name) {
    return prefix.empty() ? name : absl::StrCat(prefix, "/", name);
  }

  // Every file at or under `item` (added or deleted as a whole).
  absl::Status All(const std::string& prefix, const TreeItem& item) {
    std::string path = Join(prefix, item.name);
    if (!item.is_tree()) {
      paths_.insert(std::move(path));
      return absl::OkStatus();
    }
    absl::StatusOr<std::vector<TreeItem>> under = reader_.ReadTree(item.id);
    if (!under.ok()) return under.status();
    for (const TreeItem& e : *under) {
      absl::Status s = All(path, e);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

  TreeReader& reader_;
  std::set<std::string> paths_;
};

}  // namespace

absl::StatusOr<std::vector<std::string>> ChangedPathsBetween(TreeReader& reader, const std::array<unsigned char, 20>& from,
                                                             const std::array<unsigned char, 20>& to) {
  Walk walk(reader);
  absl::Status s = walk.Compare("", from, to);
  if (!s.ok()) return s;
  return walk.Paths();
}

}  // namespace ferry::git
