#!/usr/bin/env bash
# Run the test suite: creates .venv when missing, installs the requirements, runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_models.py -k shapes`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
install_requirements requirements-test.txt requirements-serve.txt requirements.txt
# The web page's browser test drives Debian's Chromium. Install it where this may (root with
# apt-get); elsewhere that one test is skipped and says how to install it.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] \
    && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium for tests/test_serve.py (apt-get)" >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
           --no-install-recommends chromium; } >/dev/null 2>&1; then
    echo "could not install chromium; the browser test will be skipped" >&2
  fi
fi
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# worksteal: a worker that runs out takes tests queued for the other, so a few long tests left
# at the end of one worker's share do not keep the other idle.
python -m pytest -q -n "${PYTEST_WORKERS:-2}" --dist worksteal "${@:-tests}"
