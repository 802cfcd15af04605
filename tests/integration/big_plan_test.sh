#!/usr/bin/env bash
# ctest: tests/integration/big_plan.py on a fresh database of the test
# PostgreSQL (the pg fixture), 20,000 ConfigFiles unless FERRY_BIG_PLAN_OBJECTS says.
#   big_plan_test.sh <source-dir> <build-dir>
set -euo pipefail
src=${1:?}; build=${2:?}
url=$(cat "${FERRY_TEST_PG_STATE:?}/url")
db="big_plan_$$"
psql -q "$url" -c "CREATE DATABASE $db" >/dev/null
trap 'psql -q "$url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
# 20,000 objects in one file is past the default --max-objects-per-app (10,000)
# and --max-yaml-documents (1,000): both raised, so
# that the deploy path is what this test measures.
export FERRY_BIG_PLAN_PLANNER_ARGS=${FERRY_BIG_PLAN_PLANNER_ARGS:---max-objects-per-app=25000 --max-yaml-documents=25000}
/usr/bin/python3 "$src/tests/integration/big_plan.py" "$build" --database-url "${url%/*}/$db" \
  --objects "${FERRY_BIG_PLAN_OBJECTS:-20000}" --timeout 1500
