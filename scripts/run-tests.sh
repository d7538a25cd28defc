#!/usr/bin/env bash
# The test suite, after setup and the type check (`npm test`):
#  - every test file on a Temporal dev server, except test/guest-boot/;
#  - beside it, at the same time, test/guest-boot/ (real guests converted and booted: minutes of TCG emulation each)
#    in a jest of its own, with its own dev server, at a lower CPU priority: it takes the CPU the rest of the suite
#    leaves while it waits on servers and timers, instead of slowing its timing-sensitive tests. Its lines are
#    prefixed with [guest-boot];
#  - then the migration tests again, unchanged, on a fresh Temporal cluster (PostgreSQL, history, matching, frontend
#    and worker as separate processes, and its Web UI).
# Arguments (`npm test -- <pattern>`) select files for one plain run instead: a developer's subset.
set -euo pipefail
cd "$(dirname "$0")/.."
ON_CLUSTER=(
  test/migration/cold-migration-api.test.ts
  test/migration/warm-migration-api.test.ts
  test/migration/cancel-migration.test.ts
  test/migration/worker-crash-resume.test.ts
  test/migration/warm-cutover-web-ui.test.ts
)
GUEST_BOOT=test/guest-boot/
if [ $# -gt 0 ]; then
  exec npx jest --runInBand "$@"
fi

( set -o pipefail; nice -n 15 npx jest --runInBand "$GUEST_BOOT" 2>&1 | sed -u 's/^/[guest-boot] /' ) &
guest_boot=$!
status=0
npx jest --runInBand --testPathIgnorePatterns "/$GUEST_BOOT" || status=$?
if [ $status -eq 0 ]; then
  echo "[test] the migration tests again, on a Temporal cluster"
  VMIGRATE_TEST_TEMPORAL=cluster npx jest --runInBand "${ON_CLUSTER[@]}" || status=$?
fi
guest_status=0
wait $guest_boot || guest_status=$?
[ $guest_status -eq 0 ] || echo "[test] test/guest-boot/ failed (exit $guest_status)"
[ $status -eq 0 ] && [ $guest_status -eq 0 ]
