"""Pre-warped garments (scripts/prewarp.py): DCI-VTON's warp recognised from its released file
and equal to its own code's outputs (tests/golden/dcivton/, made once by
tests/golden/dcivton_recipe.py), students on photos without parsing, teachers on the dataset's
parsing, existing files kept, and one-line errors naming the file."""

import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from data.dcivton import GROUP_OF_LABEL, LABEL_GROUPS, dcivton_condition
from models.registry import build_model, recognise
from tests.dcivton_split import make_dcivton_split
from tests.family_weights import write_family_weights
from utils.checkpoint import CheckpointError, load_checkpoint_model

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "dcivton"
FOLDERS = ("cloth-warp", "cloth-warp-mask", "unpaired-cloth-warp", "unpaired-cloth-warp-mask")
STEMS = ("00000_00", "00001_00", "00002_00")


def prewarp(*args: str) -> subprocess.CompletedProcess:
    """scripts/prewarp.py run in this process (a new one costs seconds of imports per call):
    its exit status and what it printed. tests/test_cli.py runs the real entry point."""
    import scripts.prewarp
    argv = ["--workers", "0", "--device", "cpu", *map(str, args)]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            scripts.prewarp.main(argv)
            status = 0
        except SystemExit as stop:
            status = stop.code if isinstance(stop.code, int) else 1
    return subprocess.CompletedProcess(argv, status, out.getvalue(), err.getvalue())


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> Path:
    return Path(make_dcivton_split(str(tmp_path_factory.mktemp("dcivton"))))


@pytest.fixture(scope="module")
def dcivton_weights(tmp_path_factory) -> Path:
    (path,) = write_family_weights("dcivton", tmp_path_factory.mktemp("weights"), seed=0)
    return path


@pytest.fixture(scope="module")
def dcivton_outputs(split, dcivton_weights, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("prewarps")
    result = prewarp("--dataroot", split, "--phase", "test", "--pairs", "both",
                     "--warp_checkpoint", dcivton_weights, "--height", "512", "--ext", "png",
                     "--out", out, "--batch_size", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    return out, result.stdout


def write_warp(path: Path, input_nc: int) -> Path:
    """A PF-AFN AFWM of ``input_nc`` condition channels, random, as a plain state dict."""
    torch.manual_seed(0)
    torch.save(build_model({"kind": "warp", "type": "pfafn", "input_nc": input_nc}).state_dict(),
               path)
    return path


def test_released_file_is_recognised_as_dcivton_warp(dcivton_weights):
    state = torch.load(dcivton_weights, map_location="cpu", weights_only=True)
    assert "aflow_net.weight" in state
    arch = recognise(state, "warp").arch
    assert arch["type"] == "dcivton" and arch["input_nc"] == 16
    assert arch["align_corners"] is False
    model = load_checkpoint_model(dcivton_weights, "warp")
    assert model.aflow_net.offset_align_corners is True
    # PF-AFN's own warps keep their architecture.
    for input_nc in (3, 45):
        plain = build_model({"kind": "warp", "type": "pfafn", "input_nc": input_nc})
        assert recognise(plain.state_dict(), "warp").arch["type"] == "pfafn"


def test_every_cihp_label_goes_to_its_group():
    for group, labels in enumerate(LABEL_GROUPS):
        for label in labels:
            assert GROUP_OF_LABEL[label] == group
    assert sorted(label for labels in LABEL_GROUPS for label in labels) == list(range(20))
    groups = torch.tensor([[[0, 12], [3, 5]]])
    cond = dcivton_condition(groups, torch.full((1, 3, 2, 2), 0.5))
    assert cond.shape == (1, 16, 2, 2)
    assert cond[0, 12, 0, 1] == 1 and cond[0, :13].sum(0).eq(1).all()
    assert cond[0, 13:].eq(0.5).all()


@pytest.mark.parametrize("folder", FOLDERS)
def test_prewarps_equal_dcivton_own_code(dcivton_outputs, folder):
    out, _ = dcivton_outputs
    for stem in STEMS:
        ours = np.asarray(Image.open(out / folder / f"{stem}.png"), dtype=np.int16)
        theirs = np.asarray(Image.open(GOLDEN / folder / f"{stem}.png"), dtype=np.int16)
        assert ours.shape == theirs.shape == ((512, 384, 3) if "mask" not in folder
                                              else (512, 384))
        difference = np.abs(ours - theirs)
        assert difference.mean() < 0.6
        assert np.percentile(difference, 99.9) <= 2
        # Flat images would test nothing of the flow.
        assert np.abs(theirs - theirs.mean()).mean() > 1


def test_existing_files_are_kept_unless_overwrite(split, dcivton_outputs, dcivton_weights):
    out, stdout = dcivton_outputs
    assert "paired: 3 pre-warps written" in stdout and "unpaired: 3" in stdout
    target = out / "cloth-warp" / "00000_00.png"
    Image.fromarray(np.zeros((512, 384, 3), np.uint8)).save(target)
    (out / "cloth-warp-mask" / "00001_00.png").unlink()
    again = prewarp("--dataroot", split, "--pairs", "paired", "--warp_checkpoint",
                    dcivton_weights, "--height", "512", "--ext", "png", "--out", out)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "1 pre-warps written, 2 existing kept" in again.stdout
    assert not np.asarray(Image.open(target)).any()
    assert (out / "cloth-warp-mask" / "00001_00.png").is_file()
    # Kept files of another size would leave a folder of two sizes: refused.
    other = prewarp("--dataroot", split, "--pairs", "paired", "--warp_checkpoint",
                    dcivton_weights, "--height", "256", "--ext", "png", "--out", out)
    assert other.returncode == 2, other.stderr[-2000:]
    assert "existing pre-warp of 512x384, where this run writes 256x192" in other.stderr
    forced = prewarp("--dataroot", split, "--pairs", "paired", "--warp_checkpoint",
                     dcivton_weights, "--height", "512", "--ext", "png", "--out", out,
                     "--overwrite")
    assert forced.returncode == 0 and "3 pre-warps written" in forced.stdout
    assert np.asarray(Image.open(target)).any()


def interrupted(monkeypatch, *args: str) -> None:
    """A prewarp run stopped (Ctrl-C) after its first batch of two."""
    import scripts.prewarp
    real = scripts.prewarp.write_batch
    calls = []

    def write_then_stop(*write_args):
        if calls:
            raise KeyboardInterrupt
        calls.append(real(*write_args))

    monkeypatch.setattr(scripts.prewarp, "write_batch", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        prewarp(*args, "--batch_size", "2")
    monkeypatch.setattr(scripts.prewarp, "write_batch", real)


def test_a_folder_holds_the_prewarps_of_one_warp(split, dcivton_weights, tmp_path, monkeypatch):
    """prewarps.json records which warp writes each kind, before its first picture: another
    warp adds nothing to a folder holding the first one's (an interrupted run's, another
    extension's, the other kind's of --pairs both), and --overwrite takes it over once it
    finishes."""
    out = tmp_path / "out"
    (other,) = write_family_weights("dcivton", tmp_path / "other", seed=1)
    args = ("--dataroot", split, "--pairs", "paired", "--height", "256", "--out", out)
    interrupted(monkeypatch, *args, "--warp_checkpoint", dcivton_weights)
    assert len(list((out / "cloth-warp").iterdir())) == 2
    record = json.loads((out / "prewarps.json").read_text())
    assert record["paired"]["warp_size"] == [256, 192] and "unpaired" not in record
    for extra in ((), ("--ext", "png")):
        refused = prewarp(*args, "--warp_checkpoint", other, *extra)
        assert refused.returncode == 2
        assert (f"{out / 'cloth-warp'}: its pre-warps were written by {dcivton_weights.name} "
                f"(sha256 {record['paired']['warp_sha256'][:12]}...), warp frame 256x192 "
                f"(--warp_height), .jpg pictures of 256x192; this run's warp is "
                f"{other.name}") in refused.stderr
    assert len(list((out / "cloth-warp").iterdir())) == 2          # nothing was written
    same = prewarp(*args, "--warp_checkpoint", dcivton_weights)
    assert "1 pre-warps written, 2 existing kept" in same.stdout
    # --pairs both: the unpaired folder's conflict is found before any paired file is written.
    (out / "cloth-warp" / "00001_00.jpg").unlink()
    unpaired = prewarp("--dataroot", split, "--pairs", "unpaired", "--height", "256", "--out",
                       out, "--warp_checkpoint", other)
    assert unpaired.returncode == 0, unpaired.stderr[-2000:]
    both = prewarp("--dataroot", split, "--pairs", "both", "--height", "256", "--out", out,
                   "--warp_checkpoint", dcivton_weights)
    assert both.returncode == 2 and "unpaired-cloth-warp: its pre-warps" in both.stderr
    assert not (out / "cloth-warp" / "00001_00.jpg").exists()
    # An --overwrite that did not finish leaves the folder to nobody until one does.
    interrupted(monkeypatch, *args, "--warp_checkpoint", other, "--overwrite")
    for warp in (dcivton_weights, other):
        stopped = prewarp(*args, "--warp_checkpoint", warp)
        assert stopped.returncode == 2 and "whose --overwrite run did not finish" in stopped.stderr
    replaced = prewarp(*args, "--warp_checkpoint", other, "--overwrite")
    assert replaced.returncode == 0 and "3 pre-warps written" in replaced.stdout
    record = json.loads((out / "prewarps.json").read_text())
    assert record["paired"]["warp_file"] == other.name and "replacing" not in record["paired"]
    # A damaged record is named; files of unknown making are kept and get no record.
    (out / "prewarps.json").write_text("[1, 2")
    damaged = prewarp(*args, "--warp_checkpoint", other)
    assert damaged.returncode == 2 and "prewarps.json: not the record" in damaged.stderr
    assert prewarp(*args, "--warp_checkpoint", other, "--overwrite").returncode == 0
    assert json.loads((out / "prewarps.json").read_text())["paired"]["warp_file"] == other.name
    (out / "prewarps.json").unlink()
    (out / "cloth-warp" / "00001_00.jpg").unlink()
    unknown = prewarp(*args, "--warp_checkpoint", dcivton_weights)
    assert "1 pre-warps written, 2 existing kept" in unknown.stdout
    assert not (out / "prewarps.json").exists()


def test_one_prewarp_run_at_a_time_per_folder(split, dcivton_weights, tmp_path):
    """A run into a folder that another live run writes is refused, naming it, before it reads
    the record or writes anything there (two runs with different warps could otherwise both
    pass the record's check and mix their pictures); the lock ends with the run."""
    from utils.training.run_lock import LOCK_NAME, run_folder_lock
    out = tmp_path / "out"
    args = ("--dataroot", split, "--pairs", "both", "--height", "256", "--out", out,
            "--warp_checkpoint", dcivton_weights)
    with run_folder_lock(out, what="prewarp run"):
        busy = prewarp(*args)
    assert busy.returncode == 2, busy.stdout
    assert f"{out} is in use by another prewarp run (pid " in busy.stderr
    assert "wait for it to end, or write elsewhere (--out)" in busy.stderr
    assert sorted(path.name for path in out.iterdir()) == []
    done = prewarp(*args)
    assert done.returncode == 0 and "paired: 3 pre-warps written" in done.stdout
    assert not (out / LOCK_NAME).exists()
    # A run with nothing to write takes no lock (it may read a folder it cannot write).
    with run_folder_lock(out, what="prewarp run"):
        kept = prewarp(*args)
    assert kept.returncode == 0 and "paired: 0 pre-warps written, 3 existing kept" in kept.stdout


def test_the_record_is_checked_under_the_lock(split, dcivton_weights, tmp_path, monkeypatch):
    """A run that found the folder empty is refused when another warp's run fills it before
    this one takes the lock: the record is checked under it. A folder that first had nothing
    to write (no lock) but has at the plan is refused too."""
    import scripts.prewarp
    out = tmp_path / "out"
    (other,) = write_family_weights("dcivton", tmp_path / "other", seed=1)
    args = ("--dataroot", split, "--pairs", "paired", "--height", "256", "--out", out)
    real_lock = scripts.prewarp.run_folder_lock

    def other_run_first(folder, **kwargs):
        monkeypatch.setattr(scripts.prewarp, "run_folder_lock", real_lock)
        assert prewarp(*args, "--warp_checkpoint", other).returncode == 0
        return real_lock(folder, **kwargs)

    monkeypatch.setattr(scripts.prewarp, "run_folder_lock", other_run_first)
    late = prewarp(*args, "--warp_checkpoint", dcivton_weights)
    assert late.returncode == 2 and f"this run's warp is {dcivton_weights.name}" in late.stderr
    assert json.loads((out / "prewarps.json").read_text())["paired"]["warp_file"] == other.name
    # A picture gone after the first look, which found nothing to write and so took no lock:
    # nothing is written unlocked.
    real_plan = scripts.prewarp.plan_kind

    def picture_gone_first(*plan_args):
        (out / "cloth-warp" / f"{STEMS[0]}.jpg").unlink(missing_ok=True)
        return real_plan(*plan_args)

    monkeypatch.setattr(scripts.prewarp, "plan_kind", picture_gone_first)
    gone = prewarp(*args, "--warp_checkpoint", other)
    assert gone.returncode == 2 and f"{out}: pre-warps there went missing" in gone.stderr


def photos_only(split: Path, tmp_path: Path) -> Path:
    """A copy of ``split``'s test photos, garments and masks without any parsing."""
    root = tmp_path / "VITON-HD"
    (root / "test").mkdir(parents=True)
    for folder in ("image", "cloth", "cloth-mask"):
        shutil.copytree(split / "test" / folder, root / "test" / folder)
    shutil.copy(split / "test_pairs.txt", root)
    return root


def test_student_prewarps_photos_without_parsing(split, tmp_path):
    root = photos_only(split, tmp_path)
    warp = write_warp(tmp_path / "student.pth", 3)
    result = prewarp("--dataroot", root, "--pairs", "unpaired", "--warp_checkpoint", warp,
                     "--height", "256")
    assert result.returncode == 0, result.stderr[-2000:]
    # By default the folders go into the split itself, beside image/.
    written = sorted((root / "test" / "unpaired-cloth-warp").iterdir())
    assert [path.name for path in written] == [f"{stem}.jpg" for stem in STEMS]
    assert Image.open(written[0]).size == (192, 256)
    mask = np.asarray(Image.open(root / "test" / "unpaired-cloth-warp-mask" / "00000_00.jpg"))
    assert mask.shape == (256, 192) and mask.max() > 128


def test_a_checkpoint_runs_at_the_size_it_was_trained_at(split, tmp_path):
    # The warp ran at the released 256x192 whatever size a checkpoint was trained at.
    from tests.small_models import small_models, stage4_checkpoint
    root = photos_only(split, tmp_path)
    data = torch.load(stage4_checkpoint(tmp_path / "s.pth", *small_models()), weights_only=True)
    data["config"].update(height=128, width=96)
    torch.save(data, tmp_path / "student.pth")
    args = ("--dataroot", root, "--pairs", "unpaired", "--warp_checkpoint",
            tmp_path / "student.pth", "--height", "256")
    for extra, frame in (((), [128, 96]), (("--warp_height", "64", "--overwrite"), [64, 64])):
        result = prewarp(*args, "--out", tmp_path / "out", *extra)
        assert result.returncode == 0, result.stderr[-2000:]
        record = json.loads((tmp_path / "out" / "prewarps.json").read_text())
        assert record["unpaired"]["warp_size"] == frame
    data["config"].update(height=100)
    torch.save(data, tmp_path / "odd.pth")
    refused = prewarp(*args[:-3], tmp_path / "odd.pth", "--out", tmp_path / "odd")
    assert refused.returncode == 2
    assert f"{tmp_path / 'odd.pth'}: trained at height 100: not a multiple of 32" in refused.stderr


def test_mask_flags_that_would_do_nothing_are_refused(split, tmp_path):
    # Every garment of the split has its cloth-mask: --grabcut computed nothing, and
    # --rebuild_masks never deleted a cached mask in a pre-warp run.
    root = photos_only(split, tmp_path)
    warp = write_warp(tmp_path / "student.pth", 3)
    for flag in ("--grabcut", "--rebuild_masks"):
        result = prewarp("--dataroot", root, "--pairs", "unpaired", "--warp_checkpoint", warp,
                         "--height", "256", flag)
        assert result.returncode == 2 and f"{flag}: every garment has a mask file" in \
            result.stderr, result.stderr[-2000:]
    assert not (root / "test" / "unpaired-cloth-warp").exists()
    # A parser-free warp reads no parsing, keypoints or DensePose: their flags did nothing.
    result = prewarp("--dataroot", root, "--pairs", "unpaired", "--warp_checkpoint", warp,
                     "--label_scheme", "lip", "--pose_format", "coco17")
    assert result.returncode == 2 and ("--label_scheme, --pose_format: for a parser-based "
                                       "warp's inputs; this warp takes the person photo"
                                       in result.stderr), result.stderr[-2000:]


def test_a_person_in_two_pairs_is_refused_before_any_prewarp(split, tmp_path):
    # Pre-warps are named by the person: the second garment's replaced the first's, unsaid,
    # and the next run kept it as done.
    root = photos_only(split, tmp_path)
    pairs = (root / "test_pairs.txt").read_text().splitlines()
    first = pairs[0].split()[0]
    (root / "test_pairs.txt").write_text("\n".join(pairs + [f"{first} {pairs[1].split()[1]}"]))
    result = prewarp("--dataroot", root, "--pairs", "unpaired", "--height", "256",
                     "--warp_checkpoint", write_warp(tmp_path / "student.pth", 3))
    assert result.returncode == 2 and f"{first} is in two unpaired pairs" in result.stderr, \
        result.stderr[-2000:]
    assert not (root / "test" / "unpaired-cloth-warp").exists()


def test_photos_of_two_sizes_are_refused_before_any_prewarp(split, tmp_path):
    # The output size and the warp's frame were taken from the first photo, so a square photo
    # got a 3:4 pre-warp, which the next run then refused as of another size.
    root = photos_only(split, tmp_path)
    square = root / "test" / "image" / "00002_00.jpg"
    photo = np.asarray(Image.open(square))
    Image.fromarray(photo[:photo.shape[1]]).save(square)
    warp = write_warp(tmp_path / "student.pth", 3)
    for height in ((), ("--height", "256")):
        result = prewarp("--dataroot", root, "--pairs", "paired", "--warp_checkpoint", warp,
                         *height)
        assert result.returncode == 2
        assert "00002_00.jpg: its pre-warps would be" in result.stderr
        assert "bring the photos to one size" in result.stderr
        assert not (root / "test" / "cloth-warp").exists()
        assert not (root / "test" / "prewarps.json").exists()
    # The sizes are read under --max_megapixels: the photos were refused only when decoded,
    # after the record was written.
    result = prewarp("--dataroot", root, "--pairs", "paired", "--warp_checkpoint", warp,
                     "--max_megapixels", "0.001")
    assert result.returncode == 2 and "more than the 0.001 megapixels" in result.stderr
    assert not (root / "test" / "prewarps.json").exists()


def test_arch_that_a_checkpoint_contradicts_is_refused(tmp_path):
    # --arch was ignored for this project's checkpoints, which record their architecture.
    from tests.small_models import small_models, stage4_checkpoint
    from utils.inference.prewarp import load_warp
    warp = stage4_checkpoint(tmp_path / "student.pth", *small_models())
    assert load_warp(str(warp), "pfafn").arch["type"] == "pfafn"
    with pytest.raises(CheckpointError, match=r"--arch mobile: .*student.pth holds a pfafn warp"):
        load_warp(str(warp), "mobile")
    # Widths edited in the file were built (gigabytes) before any check.
    data = torch.load(warp, weights_only=True)
    data["config"].update(warp_channels=[2048] * 5, fpn_dim=2048)
    torch.save(data, tmp_path / "wide.pth")
    with pytest.raises(CheckpointError, match=r"wide.pth: 'warp' weight .* but the architecture "
                                              r"the file declares .* needs"):
        load_warp(str(tmp_path / "wide.pth"))


def test_teacher_reads_the_dataset_parsing(split, tmp_path):
    warp = write_warp(tmp_path / "teacher.pth", 45)
    result = prewarp("--dataroot", split, "--pairs", "paired", "--warp_checkpoint", warp,
                     "--height", "256", "--out", tmp_path / "out", "--ext", "png")
    assert result.returncode == 0, result.stderr[-2000:]
    garment = np.asarray(Image.open(tmp_path / "out" / "cloth-warp" / "00002_00.png"))
    assert garment.shape == (256, 192, 3) and garment.std() > 1
    # VITON-HD without --densepose_dir: the teacher's DensePose channels are empty, which
    # went unsaid; --iuv_channel, which then reads nothing, was taken without a word.
    assert ("3 of 3 persons have no DensePose part indices (--densepose_dir): the teacher's "
            "DensePose channels are empty for them") in result.stdout
    refused = prewarp("--dataroot", split, "--pairs", "paired", "--warp_checkpoint", warp,
                      "--height", "256", "--out", tmp_path / "out2", "--iuv_channel", "r")
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: --iuv_channel r is not used: no DensePose file here is an IUV image (a PNG); "
        "leave it out")


def test_missing_and_damaged_inputs_name_the_file(split, dcivton_weights, tmp_path):
    root = tmp_path / "VITON-HD"
    shutil.copytree(split, root)
    missing = root / "test" / "image-parse-agnostic-v3.2" / "00001_00.png"
    missing.unlink()
    result = prewarp("--dataroot", root, "--pairs", "paired", "--warp_checkpoint",
                     dcivton_weights, "--height", "256", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert str(missing) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    damaged = root / "test" / "image-densepose" / "00000_00.jpg"
    damaged.write_bytes(b"not an image")
    shutil.copy(split / "test" / "image-parse-agnostic-v3.2" / "00001_00.png", missing)
    result = prewarp("--dataroot", root, "--pairs", "paired", "--warp_checkpoint",
                     dcivton_weights, "--height", "256", "--out", tmp_path / "out")
    assert result.returncode == 2 and str(damaged) in result.stderr
    result = prewarp("--dataroot", root, "--warp_checkpoint", tmp_path / "none.pth")
    assert result.returncode == 2 and "none.pth" in result.stderr
    # An --out that is a file and an unbounded --height were tracebacks (the first after the
    # warp had run, the second an allocation of gigabytes).
    for flags, message in ((["--out", dcivton_weights], "a file, not a folder"),
                           (["--height", "100000"], "--height 100000: expected 1 to 4096"),
                           (["--warp_checkpoint", tmp_path], "a folder, not a file"),
                           # test.py's family names are taken too (dmvton: was invalid)
                           (["--arch", "dmvton"], "warp_viton.pth is not a mobile warp")):
        result = prewarp("--dataroot", root, "--warp_checkpoint", dcivton_weights, *flags)
        assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]


def test_stage_one_trains_dcivton_warp_on_its_condition(tmp_path):
    from data.datasets import DataOptions, make_train_dataset
    from data.synthetic import make_dataset
    from tests.dcivton_split import write_parse_agnostic
    from train_pb_warp import ParserBasedWarp
    from utils.checkpoint import read_checkpoint
    from utils.training.engine import run

    roots = make_dataset(str(tmp_path / "data"), 2, 2, seed=1, height=128, width=96,
                         layout="vitonhd")
    for split_name in ("train", "test"):
        write_parse_agnostic(roots[split_name])
    item = make_train_dataset(DataOptions(dataset="vitonhd"), roots["root"], 64, 64)[0]
    labels = np.array(Image.open(Path(roots["train"]) / "image-parse-agnostic-v3.2" /
                                 "00000_00.png").resize((64, 64), Image.NEAREST))
    assert torch.equal(item["parse_agnostic"], torch.from_numpy(GROUP_OF_LABEL[labels]))
    assert item["densepose_rendering"].shape == (3, 64, 64)

    runs = tmp_path / "runs"
    argv = ["--dataset", "vitonhd", "--dataroot", roots["root"], "--checkpoints_dir", str(runs),
            "--name", "dci", "--warp_arch", "dcivton", "--warp_channels", "8,8,8,8,8",
            "--fpn_dim", "8", "--head_channels", "8", "--height", "64", "--width", "64",
            "--batch_size", "2", "--workers", "0", "--max_steps", "2", "--vgg_layers", "0",
            "--log_every", "1", "--sample_every", "0", "--device", "cpu",
            "--val_root", roots["root"], "--val_unit", "step", "--val_every", "1",
            "--val_max_pairs", "2", "--allow_random_weights"]
    result = run(ParserBasedWarp(), argv)
    assert result.finished and all(np.isfinite(v) for v in result.terms.values())
    saved = read_checkpoint(runs / "dci" / "final.pth")
    assert saved["arch"]["warp"]["type"] == "dcivton"
    assert saved["arch"]["warp"]["input_nc"] == 16


def test_a_dcivton_warp_given_for_a_try_on_says_where_it_belongs(dcivton_weights, tmp_path):
    # It said "is it a parser-based teacher?" of a file recognised as DCI-VTON's warp.
    from tests.small_models import small_models, stage4_checkpoint
    from utils.inference.model import load_tryon_model
    gen = stage4_checkpoint(tmp_path / "student.pth", *small_models())
    with pytest.raises(CheckpointError, match="a dcivton warp takes its own condition: it is "
                                              "for scripts/prewarp.py"):
        load_tryon_model(str(dcivton_weights), str(gen))


def test_an_overwrite_beside_stray_files_keeps_its_record(split, dcivton_weights, tmp_path):
    """A file in the folders that no pair names (a photo since removed from the split, a
    killed write's temporary) made an --overwrite drop its record: a run with another warp, or
    the other --ext, then kept and added to the first warp's pictures without a word."""
    out = tmp_path / "out"
    (other,) = write_family_weights("dcivton", tmp_path / "other", seed=1)
    args = ("--dataroot", split, "--pairs", "paired", "--height", "256", "--out", out)
    assert prewarp(*args, "--warp_checkpoint", dcivton_weights).returncode == 0
    stray = out / "cloth-warp" / "99999_00.jpg"
    shutil.copyfile(out / "cloth-warp" / "00000_00.jpg", stray)
    killed = out / "cloth-warp" / ".00001_00.abcd1234.jpg"   # as common.atomic names them
    killed.write_bytes(b"half a picture")
    again = prewarp(*args, "--warp_checkpoint", dcivton_weights, "--overwrite")
    assert again.returncode == 0, again.stderr[-2000:]
    assert (f"{out}: 1 file(s) in the paired folders name no pair of this run (e.g. "
            f"cloth-warp/99999_00.jpg); left as they are") in again.stdout
    assert stray.is_file() and not killed.exists()
    record = json.loads((out / "prewarps.json").read_text())["paired"]
    assert record["size"] == [256, 192] and record["ext"] == "jpg"
    for flags in (("--warp_checkpoint", other), ("--warp_checkpoint", dcivton_weights,
                                                  "--ext", "png")):
        refused = prewarp(*args, *flags)
        assert refused.returncode == 2 and "its pre-warps were written by" in refused.stderr
    assert not list((out / "cloth-warp").glob("*.png"))


def test_what_stands_where_outputs_go_is_named_before_any_is_written(split, dcivton_weights,
                                                                      tmp_path):
    """A file where an output folder goes, a folder where a pre-warp or the record goes: a
    traceback, the first one after every paired pre-warp was written."""
    out = tmp_path / "out"
    args = ("--dataroot", split, "--pairs", "both", "--height", "256", "--out", out,
            "--warp_checkpoint", dcivton_weights)
    out.mkdir()
    (out / "unpaired-cloth-warp-mask").write_text("mine")
    done = prewarp(*args)
    assert done.returncode == 2 and done.stderr.strip() == (
        f"error: {out}/unpaired-cloth-warp-mask: a file where the unpaired pre-warps' folder "
        f"goes; move it away, or write elsewhere (--out)")
    assert not (out / "cloth-warp").exists()
    (out / "unpaired-cloth-warp-mask").unlink()
    (out / "cloth-warp" / "00000_00.jpg").mkdir(parents=True)
    done = prewarp(*args)
    assert done.returncode == 2 and "cloth-warp/00000_00.jpg: not a file, where a pre-warp " \
                                    "goes" in done.stderr
    (out / "cloth-warp" / "00000_00.jpg").rmdir()
    (out / "prewarps.json").mkdir()
    for flags in ((), ("--overwrite",)):
        done = prewarp(*args, *flags)
        assert done.returncode == 2 and done.stderr.strip() == (
            f"error: {out}/prewarps.json: a folder where this tool keeps its record of "
            f"pre-warps; move it away")
    assert list((out / "cloth-warp").iterdir()) == []


def test_a_width_beyond_the_largest_side_is_refused(tmp_path):
    """--height bounds the height only: photos of a wide aspect asked for a 409,600-pixel-wide
    picture, and memory ran out in a traceback."""
    from types import SimpleNamespace

    import scripts.prewarp as tool
    photo = tmp_path / "wide.jpg"
    Image.fromarray(np.zeros((20, 2000, 3), np.uint8)).save(photo)
    sample = SimpleNamespace(person=SimpleNamespace(image=str(photo)))
    args = tool.build_parser().parse_args(["--dataroot", str(tmp_path), "--warp_checkpoint",
                                           str(photo), "--height", "4096"])
    with pytest.raises(tool.UserError, match=r"wide.jpg: at --height 4096 its aspect makes "
                                             r"pre-warps 409600 pixels wide, more than 4096"):
        tool.output_size(sample, args)
    with pytest.raises(tool.UserError, match=r"--warp_height 512: with the photos' aspect "
                                             r"\(20x2000\) the warp would run 51200 pixels wide"):
        tool.warp_frame(512, (20, 2000))


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    """The command ended in a KeyboardInterrupt traceback."""
    import scripts.prewarp as tool

    def interrupted_main():
        raise KeyboardInterrupt

    monkeypatch.setattr(tool, "main", interrupted_main)
    with pytest.raises(SystemExit) as stopped:
        tool.run_script()
    assert stopped.value.code == 130
    assert capsys.readouterr().err == ("stopped by Ctrl-C: the pre-warps written so far stay, and "
                                       "the same command again finishes the run\n")
