#!/usr/bin/env bash
# What the Temporal cluster lab and the suite's cluster tests need beyond the rest of scripts/setup.sh: PostgreSQL
# from Debian, and the Temporal server, its sql tool and the Web UI server built from their Go modules (a few minutes
# once, cached under .tools/temporal-cluster). Idempotent; needs the npm dependencies (tsx) installed first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt-packages.sh
install_missing_apt_packages setup-temporal-cluster postgresql-15
node --import tsx tools/temporal-cluster/build.ts
