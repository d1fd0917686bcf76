# Sourced by the scripts: create .venv on first use, install requirements.txt when it changed,
# and activate it. PYTHON picks the interpreter that creates the venv (default python3).
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv (first run: installs PyTorch, a few minutes)" >&2
  "${PYTHON:-python3}" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
# Installs a requirements file into the venv unless it and the files named after it (those it
# includes, and those whose install could move its packages) are unchanged since its last
# install: a stamp per file. pip byte-compiles what it installs
# on one core; compileall on every core does the same work in about half the time (~20 s of a
# fresh venv's set-up on 2 cores).
install_requirements() {  # FILE [INCLUDED FILE...]
  local stamp want site
  stamp=".venv/.$(basename "$1").sha"
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    python -m pip install -q --no-compile -r "$1" || return 1   # no stamp: tried again next time
    site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    python -m compileall -qq -j 0 "$site" >/dev/null 2>&1 || true
    echo "$want" > "$stamp"
  fi
}
install_requirements requirements.txt
