#pragma once

#include <nlohmann/json.hpp>

namespace ferry::kube {

// True for a core/v1 Secret (apiVersion "v1", kind "Secret").
bool IsSecret(const nlohmann::json& object);

// Replaces every value of a Secret's `data` and `stringData` by the digest of
// its bytes, "sha256:<hex>" (data base64-decoded first, so the same value
// given in data or in stringData has the same digest), and drops the
// kubectl last-applied-configuration annotation, which holds them too. Any
// other object is left as it is. Secrets compared after masking differ
// exactly when their values do; the values never leave.
void MaskSecretValues(nlohmann::json& object);

}  // namespace ferry::kube
