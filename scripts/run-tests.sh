#!/usr/bin/env bash
# The test suite, after setup and the type check (`npm test`): every test file on a Temporal dev server, then the
# migration tests again, unchanged, on a fresh Temporal cluster (PostgreSQL, history, matching, frontend and worker as
# separate processes, and its Web UI). Arguments (`npm test -- <pattern>`) select files for the first run and skip
# the second: a developer's subset.
set -euo pipefail
cd "$(dirname "$0")/.."
ON_CLUSTER=(
  test/migration/cold-migration-api.test.ts
  test/migration/warm-migration-api.test.ts
  test/migration/cancel-migration.test.ts
  test/migration/worker-crash-resume.test.ts
  test/migration/warm-cutover-web-ui.test.ts
)
npx jest --runInBand "$@"
if [ $# -eq 0 ]; then
  echo "[test] the migration tests again, on a Temporal cluster"
  VMIGRATE_TEST_TEMPORAL=cluster npx jest --runInBand "${ON_CLUSTER[@]}"
fi
