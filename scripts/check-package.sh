#!/usr/bin/env bash
# Proves the package installs as people install it: build, `npm pack`, `npm install -g` of the
# tarball into a scratch prefix, then the installed `amiflow` bin answers --version, --help,
# completion and bad input (exit 2, the flag named, no stack trace) without this checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

npm run build >/dev/null
tarball="$(npm pack --silent --pack-destination "$scratch" | tail -1)"
echo "== packed $tarball ($(du -h "$scratch/$tarball" | cut -f1))"
listing="$(tar -tzf "$scratch/$tarball")"
grep -qx 'package/dist/client/cli/index.js' <<<"$listing"
if grep -q '^package/test/' <<<"$listing"; then echo "tests were packed"; exit 1; fi

npm install -g --prefix "$scratch/prefix" --no-audit --no-fund --prefer-offline "$scratch/$tarball" >/dev/null
bin="$scratch/prefix/bin/amiflow"
cd "$scratch" # nothing from the checkout on the way

version="$("$bin" --version)"
[ "$version" = "$(node -p 'require(process.argv[1]).version' "$OLDPWD/package.json")" ]
echo "== amiflow --version: $version"

help="$("$bin" image create --help)"
grep -q -- '--instance-timeout <duration>' <<<"$help"
grep -q '__complete' <<<"$("$bin" completion bash)"
[ "$("$bin" __complete -- image cr)" = "create" ]

set +e
err="$("$bin" image create --region eu-west-1 --instance i-1 --name web-1 2>&1 >/dev/null)"
code=$?
set -e
[ "$code" -eq 2 ] || { echo "bad input exited $code, not 2"; exit 1; }
grep -q -- "--instance: 'i-1' is not an EC2 instance id" <<<"$err"
if grep -q '^    at ' <<<"$err"; then echo "stack trace printed"; exit 1; fi
echo "== installed amiflow: --version, --help, completion and bad input (exit 2) all as expected"
