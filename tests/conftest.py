import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import pytest  # noqa: E402


@pytest.fixture
def user_error(capsys):
    """``user_error(call)`` runs ``call()``, which must end as a command-line tool does on bad
    input: exit status 2, ``error: <message>`` on stderr and no traceback. Returns stderr."""
    def check(call) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as stop:
            call()
        err = capsys.readouterr().err
        assert stop.value.code == 2, f"exit status {stop.value.code}, stderr {err!r}"
        assert "error: " in err and "Traceback" not in err, err
        return err
    return check
