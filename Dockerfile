# Ferry: one image with the four service binaries, the `ferry` command, the
# helm and kubectl the planner renders with (scripts/install-k8s-tools),
# Debian's ansible for the deployer's Ansible target (docs/ansible.md) and
# OpenTofu for its Terraform target (docs/terraform.md).
# Unverified here: the development machines have no Docker engine. It builds
# with the same scripts the Makefile uses (scripts/install-deps, CMake).
#
#   docker build -t ferry:dev .

FROM debian:12 AS build
WORKDIR /src
COPY scripts/install-deps scripts/install-deps
RUN scripts/install-deps
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build --target ferry-repo-watcher ferry-planner ferry-deployer ferry-audit ferry-notifier ferry-secrets ferry

# OpenTofu at the release scripts/install-terraform pins, built from its Go
# module by that script (as `make up` does where terraform is missing).
FROM golang:1.24-bookworm AS tofu
WORKDIR /src
COPY scripts/install-terraform scripts/install-terraform
RUN FERRY_TERRAFORM_FORCE_TOFU=1 FERRY_GO=/usr/local/go/bin/go scripts/install-terraform \
 && .tools/bin/tofu version

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprotobuf32 libgit2-1.5 libpqxx-6.4 libyaml-cpp0.7 libspdlog1.10 \
      libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 libgpgme11 libssl3 libcpp-httplib0.11 \
      libcjose0 libjansson4 libcurl4 libsodium23 libjemalloc2 age \
      'libabsl20220623' git gnupg openssh-client ca-certificates openssl \
      ansible \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ferry \
 && useradd --system --uid 10001 --gid ferry --home-dir /var/lib/ferry --create-home ferry \
 && mkdir -p /var/cache/ferry /etc/ferry/audit \
 && chown ferry:ferry /var/cache/ferry /etc/ferry/audit
COPY --from=build /build/bin/ferry-repo-watcher /build/bin/ferry-planner \
     /build/bin/ferry-deployer /build/bin/ferry-audit /build/bin/ferry-notifier /build/bin/ferry-secrets /build/bin/ferry /usr/local/bin/
# The planner renders Helm charts and Kustomize overlays with these (found on
# PATH; --helm-path / --kubectl-path override).
COPY --from=build /src/.tools/bin/helm /src/.tools/bin/kubectl /usr/local/bin/
# The deployer's Terraform target runs it (the chart's
# services.deployer.terraform.binary, compose's --terraform-binary).
COPY --from=tofu /src/.tools/bin/tofu /usr/local/bin/tofu
# The suite's CA and certificates (compose's one-shot `certs` service; or
# `docker run --rm -v $PWD/tls:/tls --entrypoint ferry-certs ferry:dev /tls ...`).
COPY scripts/ferry-certs /usr/local/bin/ferry-certs
USER 10001:10001
EXPOSE 7001 7002 7003 7004 7080 9101 9102 9103 9104
ENTRYPOINT ["/usr/local/bin/ferry-audit"]
