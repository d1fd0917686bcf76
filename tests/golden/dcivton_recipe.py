"""How the golden pre-warps in tests/golden/dcivton/ were made, once, by DCI-VTON's own code.

    python tests/golden/dcivton_recipe.py --dcivton DCI_CHECKOUT --pfafn PFAFN_CHECKOUT \\
        [--out tests/golden/dcivton]

``DCI_CHECKOUT``: bcmi/DCI-VTON-Virtual-Try-On (at 5baa6d14, the files
``warp/test/eval_PBAFN_viton.py``, ``warp/test/data/cp_dataset.py``, ``warp/test/options/``);
``PFAFN_CHECKOUT``: geyuying/PF-AFN at e2bb71e2 (``PF-AFN_test/models/afwm.py`` and ``networks.py``,
which DCI-VTON's script imports as ``models.afwm`` and ``models.networks``). Either may be a
work tree or a bare git folder (files read with ``git show HEAD:path``). None of their code is
kept in this repository.

1. Data: ``tests.dcivton_split.make_dcivton_split`` (three 1024x768 VITON-HD test pairs).
2. Weights: ``python -m tests.family_weights --family dcivton --out W --seed 0``.
3. Their eval script, run as its ``test_VITON.sh`` runs it at ``--fineSize=512`` (working size
   512x384, warp at 256x192), once paired (``--name=cloth-warp``) and once with ``--unpaired``
   (``--name=unpaired-cloth-warp``), ``--batchSize=2``, on CPU in PyTorch 2.14 (whose
   ``grid_sample``/``interpolate`` defaults are those of the PyTorch 1.11 it pinned). Runtime
   shims only: ``.cuda()`` and ``torch.cuda.set_device`` do nothing; ``torch.load`` maps the
   file's ``cuda:0`` storages to the CPU; PF-AFN's cupy correlation is replaced by a plain
   PyTorch one of the same definition (49 channels, y-major, the mean over channels, zero
   padding); ``cv2.imwrite`` writes PNG (lossless) instead of JPEG under the same stem.

Output: ``{cloth-warp, cloth-warp-mask, unpaired-cloth-warp, unpaired-cloth-warp-mask}/
{stem}.png``, 512x384, 8-bit, exactly as their script quantises them (garment
``((x + 1) / 2 * 255).astype(uint8)``, mask ``(x * 255).astype(uint8)``).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.dcivton_split import make_dcivton_split  # noqa: E402
from tests.family_weights import write_family_weights  # noqa: E402

DCI_FILES = {"eval_PBAFN_viton.py": "warp/test/eval_PBAFN_viton.py",
             "data/cp_dataset.py": "warp/test/data/cp_dataset.py",
             "options/base_options.py": "warp/test/options/base_options.py",
             "options/test_options.py": "warp/test/options/test_options.py"}
PFAFN_FILES = {"models/afwm.py": "PF-AFN_test/models/afwm.py",
               "models/networks.py": "PF-AFN_test/models/networks.py"}

CORRELATION = '''
import torch
import torch.nn.functional as F


def FunctionCorrelation(tenFirst, tenSecond, intStride=1):
    """49 displacements (dy, dx) in [-3, 3], y-major; mean over channels; zero padding."""
    height, width = tenFirst.shape[-2:]
    padded = F.pad(tenSecond, (3, 3, 3, 3))
    out = [(tenFirst * padded[:, :, dy:dy + height, dx:dx + width]).mean(1, keepdim=True)
           for dy in range(7) for dx in range(7)]
    return torch.cat(out, 1)
'''

RUNNER = '''
import runpy, sys
import cv2, torch
sys.path.insert(0, ".")
torch.cuda.set_device = lambda *args, **kwargs: None
torch.Tensor.cuda = lambda self, *args, **kwargs: self
torch.nn.Module.cuda = lambda self, *args, **kwargs: self
_load = torch.load
torch.load = lambda path, *a, **k: _load(path, map_location="cpu", weights_only=False)
_imwrite = cv2.imwrite
cv2.imwrite = lambda path, image, *a: _imwrite(path.rsplit(".", 1)[0] + ".png", image)
runpy.run_path("eval_PBAFN_viton.py", run_name="__main__")
'''


def read_source(checkout: Path, path: str) -> str:
    if (checkout / path).is_file():
        return (checkout / path).read_text(encoding="utf-8")
    return subprocess.run(["git", "-C", str(checkout), "show", f"HEAD:{path}"], check=True,
                          capture_output=True, text=True).stdout


def assemble(code: Path, dcivton: Path, pfafn: Path) -> None:
    """Their files, as their script imports them, in ``code``."""
    for files, checkout in ((DCI_FILES, dcivton), (PFAFN_FILES, pfafn)):
        for target, source in files.items():
            (code / target).parent.mkdir(parents=True, exist_ok=True)
            (code / target).write_text(read_source(checkout, source), encoding="utf-8")
    for package in ("data", "options", "models", "models/correlation"):
        (code / package).mkdir(parents=True, exist_ok=True)
        (code / package / "__init__.py").touch()
    (code / "models/correlation/correlation.py").write_text(CORRELATION, encoding="utf-8")
    (code / "runner.py").write_text(RUNNER, encoding="utf-8")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dcivton", required=True, type=Path)
    parser.add_argument("--pfafn", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "golden" / "dcivton")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        root = make_dcivton_split(str(work / "data"))
        (weights,) = write_family_weights("dcivton", work / "weights", seed=0)
        code = work / "code"
        assemble(code, args.dcivton, args.pfafn)
        for name, extra in (("cloth-warp", []), ("unpaired-cloth-warp", ["--unpaired"])):
            subprocess.run([sys.executable, "runner.py", f"--name={name}", "--batchSize=2",
                            "--gpu_ids=0", "--label_nc=13", "--fineSize=512",
                            f"--dataroot={root}", f"--warp_checkpoint={weights}", *extra],
                           cwd=code, check=True, env={**os.environ, "PYTHONPATH": ""})
            for folder in (name, f"{name}-mask"):
                target = args.out / folder
                shutil.rmtree(target, ignore_errors=True)
                shutil.copytree(code / "results" / folder, target)
    print(args.out)


if __name__ == "__main__":
    main()
