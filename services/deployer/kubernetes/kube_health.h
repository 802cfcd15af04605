#pragma once

#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "ferry/v1/common.pb.h"

namespace ferry::deployer::kubernetes {

// Health of a live Kubernetes object from its spec and status, as Argo CD
// users know it:
// - Deployment: the controller has observed the latest generation, every
//   replica is updated and available, no old replica is left; Progressing
//   with reason ProgressDeadlineExceeded is DEGRADED; paused is HEALTHY
//   ("paused").
// - StatefulSet, DaemonSet, ReplicaSet: observed generation, updated and
//   ready or available replicas (OnDelete update strategy: ready only);
//   a ReplicaSet's ReplicaFailure condition is DEGRADED.
// - Pod: Succeeded HEALTHY, Failed DEGRADED, Running with all containers
//   ready HEALTHY, a container waiting in CrashLoopBackOff, ErrImagePull,
//   ImagePullBackOff, CreateContainerConfigError, InvalidImageName or
//   CreateContainerError DEGRADED, otherwise PROGRESSING.
// - Job: condition Failed DEGRADED, Complete HEALTHY, else PROGRESSING.
// - Service of type LoadBalancer: HEALTHY once an ingress is assigned.
// - PersistentVolumeClaim: Bound HEALTHY, Lost DEGRADED, else PROGRESSING.
// - CustomResourceDefinition: Established HEALTHY, NamesAccepted False
//   DEGRADED, else PROGRESSING.
// - APIService: Available True HEALTHY, else PROGRESSING.
// - Any other object with a Ready or Available condition: True HEALTHY;
//   False DEGRADED (PROGRESSING when its reason says it is progressing);
//   Unknown PROGRESSING.
// - Any other object: HEALTHY when it exists.
// An object being deleted (deletionTimestamp) is PROGRESSING. Never throws;
// a status of unexpected shape is read as absent.
std::pair<v1::HealthStatus, std::string> HealthOf(const nlohmann::json& object);

// Whether the object is DEGRADED in a way no waiting mends: a Deployment past
// its progress deadline (the controller gave up on the rollout), a failed
// Job, a Pod in phase Failed, a PersistentVolumeClaim that lost its volume, a
// CRD whose names were refused. Other DEGRADED states (a container in
// CrashLoopBackOff, Ready False) may still recover, and are waited out.
bool FailedForGood(const nlohmann::json& object);

}  // namespace ferry::deployer::kubernetes
