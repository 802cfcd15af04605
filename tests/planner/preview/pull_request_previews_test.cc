// PullRequestPreviews and PreviewConsumer: previews kept up to date from
// review events (opened, pushed to, closed), the cursor, the comment edited
// in place, and no Secret value in a preview or its comment.
#include "services/planner/preview/pull_request_previews.h"

#include <unistd.h>

#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/planner/preview/preview_consumer.h"
#include "tests/planner/fake_planner_store.h"
#include "tests/planner/fake_repo_source.h"
#include "tests/planner/preview/preview_fakes.h"
#include "tests/support/fake_clock.h"

namespace ferry::planner {
namespace {

using testing::FakeRepoSource;
using testing::FakeTree;

constexpr char kSecretValue[] = "hunter2-very-secret";

class PullRequestPreviewsTest : public ::testing::Test {
 protected:
  PullRequestPreviewsTest() : snapshot_(&repo_), renderer_(&snapshot_, Options()),
        radius_(&store_, &store_, &snapshot_, &renderer_, nullptr, &clock_),
        previews_(&radius_, &previews_store_, &commenter_) {}

  static RendererOptions Options() {
    RendererOptions o;
    o.helm_path = std::string(FERRY_TOOLS_BIN_DIR) + "/helm";
    o.kubectl_path = std::string(FERRY_TOOLS_BIN_DIR) + "/kubectl";
    return o;
  }

  void SetUp() override {
    ASSERT_EQ(::access(Options().kubectl_path.c_str(), X_OK), 0) << "run scripts/install-k8s-tools";
    tree_["base/kustomization.yaml"].data = "resources:\n- cm.yaml\n- secret.yaml\n";
    tree_["base/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: info\n";
    tree_["base/secret.yaml"].data =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: old-value\n";
    tree_["a/kustomization.yaml"].data = "namespace: a\nresources:\n- ../base\n";
    tree_["b/kustomization.yaml"].data = "namespace: b\nresources:\n- ../base\n";
    tree_["c/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n";
    base_ = repo_.Commit("repo", "refs/heads/main", tree_);
    ConfigChange change;
    v1::Environment env;
    env.set_id("dev");
    env.set_approval(v1::APPROVAL_POLICY_AUTO);
    change.create_environments.push_back(env);
    for (const char* id : {"a", "b", "c"}) {
      v1::Application app;
      app.set_id(id);
      app.set_repository_id("repo");
      app.set_ref("main");
      app.set_path(id);
      app.set_render_method(std::string(id) == "c" ? v1::RENDER_METHOD_PLAIN : v1::RENDER_METHOD_KUSTOMIZE);
      app.add_environment_ids("dev");
      app.mutable_sync_policy()->set_automated(true);
      change.create_applications.push_back(app);
    }
    ASSERT_TRUE(store_.ApplyConfigChange(change).ok());
  }

  v1::WatchReviewEventsResponse Event(const FakeTree& head, v1::PullRequestState state = v1::PULL_REQUEST_STATE_OPEN) {
    v1::Revision rev = repo_.Commit("repo", absl::StrCat("refs/pull/5/head-", ++pushes_), head);
    v1::WatchReviewEventsResponse event;
    v1::PullRequest* pr = event.mutable_pull_request();
    pr->set_repository_id("repo");
    pr->set_number(5);
    pr->set_title("tune the base");
    pr->set_head_ref("refs/pull/5/head");
    pr->set_head_sha(rev.sha());
    pr->set_base_ref("refs/heads/main");
    pr->set_base_sha(base_.sha());
    pr->set_state(state);
    return event;
  }

  static std::set<std::string> Apps(const v1::PullRequestPreview& p) {
    std::set<std::string> out;
    for (const auto& e : p.entries()) out.insert(e.application_id());
    return out;
  }

  absl::StatusOr<v1::PullRequestPreview> Get() {
    v1::GetPullRequestPreviewRequest req;
    req.set_repository_id("repo");
    req.set_number(5);
    return previews_.Get(req);
  }

  FakeRepoSource repo_;
  testing::FakePlannerStore store_;
  testing::FakePreviewStore previews_store_;
  testing::FakeCommenter commenter_;
  ferry::testing::FakeClock clock_;
  SnapshotRepoSource snapshot_;
  Renderer renderer_;
  BlastRadius radius_;
  PullRequestPreviews previews_;
  FakeTree tree_;
  v1::Revision base_;
  int pushes_ = 0;
};

TEST_F(PullRequestPreviewsTest, OpenPushCloseKeepsOnePreviewAndOneCommentEditedInPlace) {
  // Opened: touches the shared base.
  FakeTree head = tree_;
  head["base/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: debug\n";
  ASSERT_TRUE(previews_.HandleEvent(Event(head)).ok());
  absl::StatusOr<v1::PullRequestPreview> p = Get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Apps(*p), (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(p->comment_id(), "c-1");
  ASSERT_EQ(commenter_.calls().size(), 1u);
  EXPECT_EQ(commenter_.calls()[0].comment_id, "");
  EXPECT_NE(commenter_.calls()[0].body.find("| a | dev | manifests change | 1 update |"), std::string::npos)
      << commenter_.calls()[0].body;

  // A push to the PR: now it only touches c; the preview follows, and the
  // same comment is edited.
  FakeTree second = tree_;
  second["c/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: y\n";
  v1::WatchReviewEventsResponse pushed = Event(second);
  ASSERT_TRUE(previews_.HandleEvent(pushed).ok());
  p = Get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->head_sha(), pushed.pull_request().head_sha());
  EXPECT_EQ(Apps(*p), (std::set<std::string>{"c"}));
  ASSERT_EQ(commenter_.calls().size(), 2u);
  EXPECT_EQ(commenter_.calls()[1].comment_id, "c-1");
  EXPECT_EQ(p->comment_id(), "c-1");

  // The same event again (a replay after a restart): nothing recomputed or posted.
  ASSERT_TRUE(previews_.HandleEvent(pushed).ok());
  EXPECT_EQ(commenter_.calls().size(), 2u);

  // Listed without diffs.
  v1::ListPullRequestPreviewsRequest list;
  list.set_repository_id("repo");
  absl::StatusOr<v1::ListPullRequestPreviewsResponse> listed = previews_.List(list);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->previews_size(), 1);
  EXPECT_TRUE(listed->previews(0).entries(0).actions(0).unified_diff().empty());
  EXPECT_FALSE(p->entries(0).actions(0).unified_diff().empty());

  // Closed: removed.
  v1::WatchReviewEventsResponse closed = pushed;
  closed.mutable_pull_request()->set_state(v1::PULL_REQUEST_STATE_CLOSED);
  ASSERT_TRUE(previews_.HandleEvent(closed).ok());
  EXPECT_TRUE(absl::IsNotFound(Get().status()));
  listed = previews_.List(list);
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->previews_size(), 0);
}

TEST_F(PullRequestPreviewsTest, SecretValuesNeverReachThePreviewOrTheComment) {
  FakeTree head = tree_;
  head["base/secret.yaml"].data =
      absl::StrCat("apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: ", kSecretValue,
                   "\n");
  ASSERT_TRUE(previews_.HandleEvent(Event(head)).ok());
  absl::StatusOr<v1::PullRequestPreview> p = Get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Apps(*p), (std::set<std::string>{"a", "b"}));
  std::string all = p->DebugString();
  EXPECT_EQ(all.find(kSecretValue), std::string::npos) << all;
  EXPECT_EQ(all.find("old-value"), std::string::npos) << all;
  ASSERT_EQ(commenter_.calls().size(), 1u);
  EXPECT_EQ(commenter_.calls()[0].body.find(kSecretValue), std::string::npos);
}

TEST_F(PullRequestPreviewsTest, AFailedCommentIsRecordedAndRetriedOnReplay) {
  commenter_.Fail(absl::UnavailableError("host down"));
  FakeTree head = tree_;
  head["c/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: z\n";
  v1::WatchReviewEventsResponse event = Event(head);
  ASSERT_TRUE(previews_.HandleEvent(event).ok());
  absl::StatusOr<v1::PullRequestPreview> p = Get();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->comment_error(), "host down");
  commenter_.Fail(absl::OkStatus());
  ASSERT_TRUE(previews_.HandleEvent(event).ok());
  p = Get();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->comment_error(), "");
  EXPECT_EQ(p->comment_id(), "c-1");
}

TEST_F(PullRequestPreviewsTest, GetAndListNameTheMissingField) {
  v1::GetPullRequestPreviewRequest get;
  get.set_number(1);
  EXPECT_EQ(previews_.Get(get).status().message(), "repository_id: is required");
  get.set_repository_id("repo");
  get.set_number(0);
  EXPECT_EQ(previews_.Get(get).status().message(), "number: must be positive");
  EXPECT_EQ(previews_.List({}).status().message(), "repository_id: is required");
}

TEST_F(PullRequestPreviewsTest, ConsumerFollowsTheStreamAndResumesFromItsCursor) {
  testing::FakeReviewEventSource source;
  FakeTree head = tree_;
  head["c/cm.yaml"].data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  x: 1\n";
  v1::WatchReviewEventsResponse check;
  check.mutable_check()->set_name("ci/test");
  source.Publish(check);
  source.Publish(Event(head));
  // An event naming a commit the mirror lacks is passed, not retried forever.
  v1::WatchReviewEventsResponse missing = Event(head);
  missing.mutable_pull_request()->set_number(6);
  missing.mutable_pull_request()->set_head_sha(std::string(40, 'f'));
  source.Publish(missing);
  {
    PreviewConsumer consumer(&source, &store_, &previews_, &clock_);
    consumer.Start();
    for (int i = 0; i < 3000 && store_.GetCursor(PreviewConsumer::kCursorName).value_or("") != "3"; ++i)
      ::usleep(1000);
    consumer.Stop();
  }
  EXPECT_EQ(store_.GetCursor(PreviewConsumer::kCursorName).value_or(""), "3");
  absl::StatusOr<v1::PullRequestPreview> p = Get();
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Apps(*p), (std::set<std::string>{"c"}));

  // Restarted: resumes after "3" and sees the close.
  v1::WatchReviewEventsResponse closed = Event(head, v1::PULL_REQUEST_STATE_MERGED);
  source.Publish(closed);
  {
    PreviewConsumer consumer(&source, &store_, &previews_, &clock_);
    consumer.Start();
    for (int i = 0; i < 3000 && store_.GetCursor(PreviewConsumer::kCursorName).value_or("") != "4"; ++i)
      ::usleep(1000);
    consumer.Stop();
  }
  EXPECT_EQ(source.opened_with(), (std::vector<std::string>{"", "3"}));
  EXPECT_TRUE(absl::IsNotFound(Get().status()));
}

}  // namespace
}  // namespace ferry::planner
