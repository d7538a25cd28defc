#!/usr/bin/env bash
# What the Temporal cluster lab needs beyond scripts/setup.sh: PostgreSQL from Debian. (The Temporal server itself
# is built by the lab on first start, from the Go module at the compose file's version.) Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/apt-packages.sh
install_missing_apt_packages setup-temporal-cluster postgresql-15
