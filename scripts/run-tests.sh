#!/usr/bin/env bash
# The test suite, after setup and the type check (`npm test`):
#  - every test file on a Temporal dev server, except test/guest-boot/;
#  - beside it, at the same time, test/guest-boot/ (real guests converted and booted: minutes of TCG emulation each)
#    in a jest of its own, with its own dev server, at a lower CPU priority: it takes the CPU the rest of the suite
#    leaves while it waits on servers and timers, instead of slowing its timing-sensitive tests. Its lines are
#    prefixed with [guest-boot];
#  - after it, still beside the first run, the migration tests again, unchanged, on a fresh Temporal cluster
#    (PostgreSQL, history, matching, frontend and worker as separate processes, and its Web UI) on ports of its own,
#    at normal priority (they are about timing under faults); their lines are prefixed with [cluster].
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

(
  set -o pipefail
  lane=0
  nice -n 15 npx jest --runInBand "$GUEST_BOOT" 2>&1 | sed -u 's/^/[guest-boot] /' || lane=$?
  VMIGRATE_TEST_TEMPORAL=cluster VMIGRATE_TEST_CLUSTER_PORT_OFFSET=400 npx jest --runInBand "${ON_CLUSTER[@]}" 2>&1 | sed -u 's/^/[cluster] /' || lane=$?
  exit $lane
) &
second=$!
status=0
npx jest --runInBand --testPathIgnorePatterns "/$GUEST_BOOT" || status=$?
second_status=0
wait $second || second_status=$?
[ $second_status -eq 0 ] || echo "[test] test/guest-boot/ or the cluster run failed (exit $second_status)"
[ $status -eq 0 ] && [ $second_status -eq 0 ]
