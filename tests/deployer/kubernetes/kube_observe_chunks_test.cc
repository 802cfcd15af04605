// The planner's ObserveLiveState client (GrpcLiveStateSource) against the
// real deployer (its gRPC service in process) and the test run's real
// kube-apiserver, for an application whose rendered objects exceed one
// request's 2 MiB of whole manifests.
#include <grpcpp/grpcpp.h>

#include "services/deployer/deployer_service.h"
#include "services/planner/grpc_live_state_source.h"
#include "tests/deployer/kubernetes/kube_deployer_harness.h"

namespace ferry::deployer::testing_kube {
namespace {

// Four ConfigMaps of about 700 KiB (2.8 MiB): past one request, each is
// still dry-run by the server, so every one diffs like the cluster will.
TEST_F(KubernetesDeployerTest, AnApplicationOverTwoMebibytesIsDryRunInChunks) {
  std::vector<json> objects;
  for (int i = 0; i < 4; ++i) objects.push_back(ConfigMap(absl::StrCat("big-", i), std::string(700 << 10, 'a' + i)));
  v1::Deployment d1 = Deploy(Plan("p1", objects, '1'));
  ASSERT_EQ(d1.state(), v1::DEPLOYMENT_STATE_SUCCEEDED) << d1.message();

  DeployerService service(deployer_.get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  planner::GrpcLiveStateSource source(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()), absl::Seconds(120));

  objects[3] = ConfigMap("big-3", std::string(700 << 10, 'z'));  // The last one changes.
  v1::Plan p2 = Plan("p2", objects, '2');
  std::vector<v1::Manifest> desired(p2.manifests().begin(), p2.manifests().end());
  absl::StatusOr<v1::LiveState> state = source.Observe("shop", "dev", p2.target(), desired);
  ASSERT_TRUE(state.ok()) << state.status();
  ASSERT_EQ(state->objects_size(), 4);
  for (const v1::LiveObject& o : state->objects()) {
    ASSERT_FALSE(o.dry_run_json().empty()) << o.object().name() << " was diffed without the server's dry run";
    absl::StatusOr<json> dry = ParseJson(o.dry_run_json());
    ASSERT_TRUE(dry.ok()) << o.object().name();
    char want = o.object().name() == "big-3" ? 'z' : 'a' + (o.object().name().back() - '0');
    EXPECT_EQ((*dry)["data"]["value"], std::string(700 << 10, want)) << o.object().name();
    EXPECT_TRUE(o.conflict().empty()) << o.conflict();
  }
  server->Shutdown();
}

}  // namespace
}  // namespace ferry::deployer::testing_kube
