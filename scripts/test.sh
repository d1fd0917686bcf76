#!/usr/bin/env bash
# Run the test suite: creates .venv when missing, installs the requirements, runs pytest.
# Extra arguments go to pytest (e.g. `bash scripts/test.sh tests/test_models.py -k shapes`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
python -m pip install -q -r requirements-test.txt
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pytest -q -n "${PYTEST_WORKERS:-2}" "${@:-tests}"
