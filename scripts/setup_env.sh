# Sourced by the scripts: create .venv on first use, install requirements.txt when it changed,
# and activate it. PYTHON picks the interpreter that creates the venv (default python3).
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv (first run: installs PyTorch, a few minutes)" >&2
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
  python -m pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
