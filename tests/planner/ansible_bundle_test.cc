// render: ansible (the folder as one AnsiblePlaybook object) and the
// ansible target of ferry.yaml.
#include "services/planner/ansible_bundle.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "services/planner/declarative_config.h"
#include "services/planner/validation.h"

namespace ferry::planner {
namespace {

TreeEntry File(const std::string& path, const std::string& data) {
  TreeEntry e;
  e.path = path;
  e.data = data;
  return e;
}

v1::Application App() {
  v1::Application app;
  app.set_id("web");
  app.set_path("infra/web");
  app.set_render_method(v1::RENDER_METHOD_ANSIBLE);
  return app;
}

TEST(AnsibleBundleTest, CarriesEveryFileOfTheFolderAsLinesOrBase64) {
  std::vector<TreeEntry> files = {File("infra/web/site.yml", "- hosts: all\n  tasks: []\n"),
                                  File("infra/web/roles/r/files/blob.bin", std::string("\xff\x00\x01", 3)),
                                  File("infra/web/health.yml", "- hosts: all\n"),
                                  File("infra/other/site.yml", "not ours\n")};
  absl::StatusOr<v1::Manifest> m = AnsibleBundle(App(), files, 1 << 20);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->object().group(), "ansible.ferry.dev");
  EXPECT_EQ(m->object().kind(), "AnsiblePlaybook");
  EXPECT_EQ(m->object().name(), "web");
  EXPECT_EQ(m->source_path(), "infra/web/site.yml");
  nlohmann::json j = nlohmann::json::parse(m->json());
  EXPECT_EQ(j["spec"]["playbook"], "site.yml");
  EXPECT_EQ(j["spec"]["healthPlaybook"], "health.yml");
  EXPECT_EQ(j["spec"]["files"]["site.yml"], nlohmann::json({"- hosts: all", "  tasks: []", ""}));
  EXPECT_EQ(j["spec"]["files"]["roles/r/files/blob.bin"]["base64"], "/wAB");
  EXPECT_FALSE(j["spec"]["files"].contains("../other/site.yml"));
  EXPECT_EQ(j["spec"]["files"].size(), 3u);
}

TEST(AnsibleBundleTest, RefusesAFolderWithoutPlaybookASymlinkOutOrTooManyBytes) {
  absl::StatusOr<v1::Manifest> none = AnsibleBundle(App(), {File("infra/web/main.yml", "x\n")}, 1 << 20);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("no site.yml or playbook.yml in \"infra/web\""), std::string::npos)
      << none.status();
  TreeEntry link;
  link.path = "infra/web/group_vars/all.yml";
  link.type = v1::CONTENT_ENTRY_TYPE_SYMLINK;
  link.symlink_target = "../../../secrets.yml";
  absl::StatusOr<v1::Manifest> out =
      AnsibleBundle(App(), {File("infra/web/site.yml", "x\n"), link, File("secrets.yml", "pw: 1\n")}, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("symlink infra/web/group_vars/all.yml"), std::string::npos) << out.status();
  absl::StatusOr<v1::Manifest> big = AnsibleBundle(App(), {File("infra/web/site.yml", std::string(2000, 'x'))}, 1000);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(AnsibleConfigTest, FerryYamlDeclaresAnAnsibleEnvironmentAndApplication) {
  auto c = ParseDeclarativeConfig(R"(environments:
  servers:
    ansible:
      connection: ssh
      inventory: inventories/prod
      extraVars: {root: /srv}
      secretVars:
        token: {env: FERRY_SECRET_TOKEN}
      sshPrivateKey: {file: deploy-key}
      knownHostsFile: /etc/ferry/known_hosts
      sshUser: deploy
applications:
  web:
    path: infra/web
    render: ansible
    environments: [servers]
)",
                                  "ferry.yaml", "r", "refs/heads/main");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->environments.size(), 1u);
  const v1::DeployTarget& t = c->environments[0].target();
  EXPECT_EQ(t.kind(), v1::TARGET_KIND_ANSIBLE);
  EXPECT_EQ(t.ansible().connection(), v1::ANSIBLE_CONNECTION_SSH);
  EXPECT_EQ(t.ansible().inventory(), "inventories/prod");
  EXPECT_EQ(t.ansible().extra_vars().at("root"), "/srv");
  EXPECT_EQ(t.ansible().secret_vars().at("token").env(), "FERRY_SECRET_TOKEN");
  EXPECT_EQ(t.ansible().ssh_private_key().file(), "deploy-key");
  EXPECT_EQ(t.ansible().known_hosts_file(), "/etc/ferry/known_hosts");
  EXPECT_TRUE(ValidateTarget(t).ok()) << ValidateTarget(t);
  EXPECT_EQ(c->applications[0].render_method(), v1::RENDER_METHOD_ANSIBLE);
}

TEST(AnsibleConfigTest, SshWithoutKnownHostsAnInventoryOutsideOrABadVariableIsRefusedByName) {
  auto ssh = ParseDeclarativeConfig("environments:\n  s:\n    ansible:\n      connection: ssh\n      sshPrivateKey: {file: k}\n",
                                    "ferry.yaml", "r", "m");
  ASSERT_FALSE(ssh.ok());
  EXPECT_NE(ssh.status().message().find("environments.s.ansible.knownHostsFile: is required for connection ssh"),
            std::string::npos)
      << ssh.status();
  v1::DeployTarget t;
  t.set_kind(v1::TARGET_KIND_ANSIBLE);
  t.mutable_ansible()->set_inventory("../../etc/hosts");
  EXPECT_NE(ValidateTarget(t).message().find("environment.target.ansible.inventory"), std::string::npos)
      << ValidateTarget(t);
  t.mutable_ansible()->clear_inventory();
  (*t.mutable_ansible()->mutable_extra_vars())["bad-name"] = "x";
  EXPECT_NE(ValidateTarget(t).message().find("\"bad-name\" is not a variable name"), std::string::npos)
      << ValidateTarget(t);
  auto both = ParseDeclarativeConfig("environments:\n  s:\n    host: {rootDir: /x}\n    ansible: {}\n", "ferry.yaml",
                                     "r", "m");
  ASSERT_FALSE(both.ok());
  EXPECT_NE(both.status().message().find("has more than one of host, kubernetes, ansible and terraform"), std::string::npos);
}

}  // namespace
}  // namespace ferry::planner
