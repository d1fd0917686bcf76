import pickle

import pytest
import torch

from models.afwm import AFWM
from models.generator import ResUnetGenerator
from utils.checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load_weights,
    read_checkpoint,
    save_atomic,
)

SMALL = dict(channels=(8, 16, 16, 16, 16), fpn_dim=16)


def _randomise(model, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn_like(tensor) * 0.1 + 0.5)
    return model


def test_released_state_dict_with_extra_filter_key_loads(tmp_path):
    source = _randomise(AFWM(3, **SMALL), 0)
    state = dict(source.state_dict())
    state["aflow_net.weight"] = torch.zeros(4, 1, 3, 3)  # saved by accident in the release
    path = tmp_path / "warp_model_final.pth"
    torch.save(state, path)
    target = AFWM(3, **SMALL)
    load_weights(target, path, key="warp")
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value), name


def test_module_prefix_from_data_parallel_is_accepted(tmp_path):
    source = _randomise(ResUnetGenerator(7, ngf=8), 1)
    path = tmp_path / "gen.pth"
    torch.save({"module." + k: v for k, v in source.state_dict().items()}, path)
    target = ResUnetGenerator(7, ngf=8)
    load_weights(target, path, key="gen")
    assert torch.equal(target.model.model[0].weight, source.model.model[0].weight)


def test_project_checkpoint_round_trip_and_stage_check(tmp_path):
    warp = _randomise(AFWM(3, **SMALL), 2)
    path = tmp_path / "latest.pth"
    save_atomic({"format": CHECKPOINT_FORMAT, "stage": "pf_warp",
                 "model": {"warp": warp.state_dict()}, "config": {"height": 64}}, path)
    target = AFWM(3, **SMALL)
    data = load_weights(target, path, key="warp", stages=["pf_warp", "pf_gen"])
    assert data["config"] == {"height": 64}
    assert torch.equal(target.aflow_net.netMain[0][0].weight, warp.aflow_net.netMain[0][0].weight)
    with pytest.raises(CheckpointError,
                       match=r"'pf_warp' checkpoint; expected one of \['pb_warp'\]"):
        load_weights(AFWM(3, **SMALL), path, key="warp", what="--pb_warp_checkpoint",
                     stages=["pb_warp"])
    with pytest.raises(CheckpointError, match="has no 'gen' model"):
        load_weights(ResUnetGenerator(7, ngf=8), path, key="gen")
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_file_names_the_flag_and_path(tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(CheckpointError, match=r"--warp_checkpoint: file not found: .*nowhere\.pth"):
        load_weights(AFWM(3, **SMALL), missing, key="warp", what="--warp_checkpoint")


def test_shape_and_key_mismatch_name_the_keys(tmp_path):
    path = tmp_path / "pb.pth"
    torch.save(AFWM(45, **SMALL).state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        load_weights(AFWM(3, **SMALL), path, key="warp")
    message = str(info.value)
    assert "shape mismatch" in message and "cond_features.encoders.0.0.block.0.weight" in message
    assert str(path) in message

    state = AFWM(3, **SMALL).state_dict()
    del state["cond_FPN.smooth.4.bias"]
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(AFWM(3, **SMALL), path, key="warp")
    assert "missing keys: cond_FPN.smooth.4.bias" in str(info.value)
    assert "unexpected keys: extra.weight" in str(info.value)


def test_partial_load_skips_only_the_named_prefixes(tmp_path):
    teacher = _randomise(AFWM(45, **SMALL), 3)
    path = tmp_path / "teacher.pth"
    torch.save(teacher.state_dict(), path)
    student = AFWM(3, **SMALL)
    before = student.cond_features.encoders[0][0].block[2].weight.clone()
    load_weights(student, path, key="warp", skip_prefixes=("cond_", "aflow_net.netRefine"))
    assert torch.equal(student.cond_features.encoders[0][0].block[2].weight, before)
    assert torch.equal(student.image_features.encoders[0][0].block[2].weight,
                       teacher.image_features.encoders[0][0].block[2].weight)
    assert torch.equal(student.aflow_net.netMain[1][0].weight,
                       teacher.aflow_net.netMain[1][0].weight)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_files_that_would_run_code_or_are_corrupt_are_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    with pytest.raises(CheckpointError, match="cannot read") as refused:
        read_checkpoint(evil)
    # one line, and no advice to load it unsafely
    assert "\n" not in str(refused.value) and "weights_only" not in str(refused.value)
    assert "it is refused" in str(refused.value)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint\nat all\n")
    with pytest.raises(CheckpointError, match=r"notes\.pth: not a PyTorch checkpoint"):
        read_checkpoint(text)
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth is an empty file"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(CheckpointError, match="is a folder, not a checkpoint file"):
        read_checkpoint(tmp_path)
    torn = tmp_path / "torn.pth"
    torch.save(AFWM(3, **SMALL).state_dict(), torn)
    torn.write_bytes(torn.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read") as refused:
        read_checkpoint(torn)
    # torch's reason, to the end of its first sentence (it was cut after 160 characters)
    assert str(refused.value).endswith("failed finding central directory); it is refused")
    listed = tmp_path / "list.pth"
    torch.save([1, 2], listed)
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_checkpoint(listed)


def test_saved_files_get_the_usual_permissions(tmp_path):
    import os
    import stat
    previous = os.umask(0o022)
    try:
        save_atomic({"x": torch.zeros(1)}, tmp_path / "c.pth")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE(os.stat(tmp_path / "c.pth").st_mode)
    assert mode == 0o644, oct(mode)      # not mkstemp's 0o600


# ---------------------------------------------------------------------------------------------
# Architectures as data


def test_a_checkpoint_rebuilds_its_own_architecture(tmp_path):
    from utils.checkpoint import checkpoint_payload, load_checkpoint_model
    warp = _randomise(AFWM(3, channels=(8, 16, 16, 16, 32), fpn_dim=24, align_corners=False), 4)
    gen = _randomise(ResUnetGenerator(7, ngf=8, num_downs=6), 5)
    payload, bad = checkpoint_payload("pf_gen", {"warp": warp, "gen": gen}, {"height": 64})
    assert bad == []
    save_atomic(payload, tmp_path / "final.pth")
    data = read_checkpoint(tmp_path / "final.pth")
    assert data["arch"]["warp"] == {"kind": "warp", "type": "pfafn", "input_nc": 3,
                                    "channels": [8, 16, 16, 16, 32], "fpn_dim": 24,
                                    "align_corners": False, "cost_volume": "auto",
                                    "head_channels": [128, 64, 32]}
    rebuilt = {key: load_checkpoint_model(tmp_path / "final.pth", key) for key in ("warp", "gen")}
    assert rebuilt["warp"].align_corners is False and rebuilt["gen"].arch["num_downs"] == 6
    for key, model in (("warp", warp), ("gen", gen)):
        for name, value in model.state_dict().items():
            assert torch.equal(rebuilt[key].state_dict()[name], value), name


def test_an_older_checkpoint_with_only_a_config_still_loads(tmp_path):
    from utils.checkpoint import load_checkpoint_model
    warp = _randomise(AFWM(45, **SMALL), 6)
    path = tmp_path / "old.pth"
    save_atomic({"format": CHECKPOINT_FORMAT, "stage": "pb_warp",
                 "model": {"warp": warp.state_dict()},
                 "config": {"warp_channels": list(SMALL["channels"]), "fpn_dim": 16,
                            "align_corners": True}}, path)
    model = load_checkpoint_model(path, "warp")
    assert model.arch["input_nc"] == 45 and model.arch["channels"] == list(SMALL["channels"])


def test_released_files_are_recognised_from_their_keys(tmp_path):
    from utils.checkpoint import checkpoint_arch
    state = dict(AFWM(45, **SMALL).state_dict(), **{"aflow_net.weight": torch.zeros(4, 1, 3, 3)})
    arch = checkpoint_arch(state, "warp", "pb_warp.pth")
    assert (arch["type"], arch["input_nc"], arch["channels"], arch["fpn_dim"]) == (
        "pfafn", 45, list(SMALL["channels"]), 16)
    arch = checkpoint_arch(ResUnetGenerator(8, ngf=16).state_dict(), "gen", "gen.pth")
    assert (arch["type"], arch["input_nc"], arch["ngf"], arch["num_downs"]) == ("resunet", 8, 16, 5)


def test_an_unknown_set_of_keys_names_the_closest_architecture(tmp_path):
    from utils.checkpoint import checkpoint_arch
    state = AFWM(3, **SMALL).state_dict()
    state["aflow_net.netStyle.0.conv0.weight"] = torch.zeros(1)
    del state["aflow_net.netMain.0.0.weight"]
    with pytest.raises(CheckpointError) as info:
        checkpoint_arch(state, "warp", "odd_warp.pth", "--warp_checkpoint")
    message = str(info.value)
    assert "--warp_checkpoint: odd_warp.pth is not a known warp architecture" in message
    assert "closest is 'pfafn'" in message
    assert "aflow_net.netStyle.0.conv0.weight" in message and "netMain.0.0.weight" in message


def test_corrupted_or_non_finite_weights_are_refused(tmp_path):
    from utils.checkpoint import checkpoint_payload, load_checkpoint_model
    warp = _randomise(AFWM(3, **SMALL), 7)
    payload, _ = checkpoint_payload("pf_warp", {"warp": warp}, {})
    path = tmp_path / "latest.pth"
    save_atomic(payload, path)
    # Flip bytes inside one weight tensor's storage: the file still unpickles.
    raw = bytearray(path.read_bytes())
    tensor = warp.aflow_net.netMain[0][0].weight.detach().numpy().tobytes()
    start = bytes(raw).find(tensor[:64])
    assert start > 0
    raw[start + 8:start + 16] = bytes(8)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="is corrupted: the weights of its 'warp' model"):
        load_checkpoint_model(path, "warp")

    state = warp.state_dict()
    state["aflow_net.netMain.0.0.bias"] = torch.full_like(state["aflow_net.netMain.0.0.bias"],
                                                          float("nan"))
    torch.save(state, tmp_path / "nan.pth")
    with pytest.raises(CheckpointError,
                       match="hold NaN or infinity, e.g. aflow_net.netMain.0.0.bias"):
        load_weights(AFWM(3, **SMALL), tmp_path / "nan.pth", key="warp")
    diverged = AFWM(3, **SMALL)
    with torch.no_grad():
        diverged.aflow_net.netRefine[0][0].weight.fill_(float("inf"))
    _, bad = checkpoint_payload("pf_warp", {"warp": diverged}, {})
    assert bad == ["warp"]


@pytest.mark.parametrize("field, value, expected", [
    ("align_corners", "maybe", "--align_corners maybe is not true or false"),
    ("align_corners", 1, "--align_corners 1 is not true or false"),
    ("fpn_dim", -3, "--fpn_dim -3 is not a positive whole number"),
    ("warp_channels", "abc", "--warp_channels abc is not a list of positive whole")])
def test_garbage_in_a_checkpoints_config_is_one_line(tmp_path, field, value, expected):
    from tests.small_models import small_models, stage4_checkpoint
    from utils.checkpoint import load_checkpoint_model
    path = stage4_checkpoint(tmp_path / "final.pth", *small_models(0))
    data = read_checkpoint(path)
    data["config"][field] = value
    with pytest.raises(CheckpointError, match="final.pth") as refused:
        load_checkpoint_model(path, "warp", data=data)
    assert expected in str(refused.value) and "\n" not in str(refused.value)


def test_only_a_max_steps_trials_last_state_counts_as_stopped_early():
    from utils.checkpoint import stopped_early

    def saved(step, max_steps):
        return {"config": {"niter": 1, "niter_decay": 1, "max_steps": max_steps},
                "steps_per_epoch": 3, "step": step}
    assert stopped_early(saved(2, 2)) == "step 2 of its schedule's 6"
    assert stopped_early(saved(2, 0)) is None      # best.pth or latest.pth of a whole run
    assert stopped_early(saved(2, 4)) is None      # an epoch file before the trial's end
    assert stopped_early(saved(6, 10)) is None     # the schedule ended first
    assert stopped_early({"step": 2}) is None      # no schedule recorded
    edited = saved(2, 2)
    edited["config"]["niter"] = "x"                # a TypeError before any check of the file
    assert stopped_early(edited) is None and stopped_early({**saved(2, 2), "step": "2"}) is None


@pytest.mark.parametrize("field, value", [
    ("arch", "x"), ("stage", ["pf_gen"]), ("checksums", "abc"), ("config", None),
    ("model", {"warp": None, "gen": {}}), ("step", "2")])
def test_a_checkpoint_field_of_another_type_is_one_line(tmp_path, field, value):
    # Each gave a traceback (AttributeError, TypeError) from wherever the field was first read.
    from tests.small_models import small_models, stage4_checkpoint
    path = stage4_checkpoint(tmp_path / "final.pth", *small_models(0))
    data = torch.load(path, weights_only=True)
    data[field] = value
    torch.save(data, path)
    with pytest.raises(CheckpointError, match=rf"final.pth: its '{field}' is not what this"):
        read_checkpoint(path, "--checkpoint")


def test_weights_that_are_no_floating_point_weights_are_refused(tmp_path):
    # int8 and complex weights loaded into an image of garbage; sparse, quantized and meta
    # tensors gave tracebacks.
    from utils.checkpoint import load_checkpoint_model
    state = _randomise(ResUnetGenerator(7, ngf=8), 3).state_dict()
    name = "model.model.0.weight"
    for value, shown in ((state[name].to(torch.int8), "torch.int8"),
                         (state[name].to(torch.complex64), "torch.complex64"),
                         (state[name].to_sparse(), "torch.sparse_coo"),
                         (torch.quantize_per_tensor(state[name], 0.1, 0, torch.qint8),
                          "quantized torch.qint8"),
                         (state[name].to("meta"), "meta")):
        torch.save({**state, name: value}, tmp_path / "gen.pth")
        with pytest.raises(CheckpointError, match=rf"gen.pth: 'gen' weight '{name}' .*{shown}"):
            load_checkpoint_model(tmp_path / "gen.pth", "gen")
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        torch.save({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()},
                   tmp_path / "gen.pth")
        load_checkpoint_model(tmp_path / "gen.pth", "gen")


def test_wrapper_prefixes_in_any_order_and_colliding_keys(tmp_path):
    from utils.checkpoint import load_checkpoint_model
    source = _randomise(ResUnetGenerator(7, ngf=8), 4)
    state = source.state_dict()
    torch.save({"_orig_mod.module." + k: v for k, v in state.items()}, tmp_path / "gen.pth")
    target = load_checkpoint_model(tmp_path / "gen.pth", "gen")   # torch.compile(DataParallel)
    assert torch.equal(target.model.model[0].weight, source.model.model[0].weight)
    # One key twice once stripped: either could have been loaded, without a word.
    doubled = {"module." + k: v for k, v in state.items()}
    doubled["model.model.0.weight"] = torch.zeros_like(state["model.model.0.weight"])
    torch.save(doubled, tmp_path / "gen.pth")
    with pytest.raises(CheckpointError, match="two weights are 'model.model.0.weight' once"):
        load_checkpoint_model(tmp_path / "gen.pth", "gen")


def test_negative_variances_and_generators_of_other_outputs_are_refused(tmp_path):
    # A negative running variance made every try-on black; a mobile generator of 5 outputs
    # wrote images, one of 3 failed in the composition.
    from models.registry import build_model
    from utils.checkpoint import load_checkpoint_model
    state = _randomise(ResUnetGenerator(7, ngf=8), 5).state_dict()
    key = next(k for k in state if k.endswith("running_var"))
    state[key][0] = -1.0
    torch.save(state, tmp_path / "gen.pth")
    with pytest.raises(CheckpointError, match=f"gen.pth: BatchNorm variances below 0 in {key}"):
        load_checkpoint_model(tmp_path / "gen.pth", "gen")
    for outputs in (3, 5):
        mobile = build_model({"kind": "gen", "type": "mobile", "input_nc": 7,
                              "output_nc": outputs})
        torch.save(mobile.state_dict(), tmp_path / "mobile.pth")
        with pytest.raises(CheckpointError, match=f"a generator of {outputs} output channels; "
                                                  f"a try-on generator has 4"):
            load_checkpoint_model(tmp_path / "mobile.pth", "gen")


def test_a_torchscript_file_is_one_message_without_torch_warnings(tmp_path):
    """torch.load printed a two-line UserWarning about TorchScript archives before the error."""
    import warnings

    from utils.weights import WeightsFileError, read_weights_file
    path = tmp_path / "scripted.pth"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"--checkpoint: cannot read .*scripted.pth"):
            read_checkpoint(path, "--checkpoint")
        with pytest.raises(WeightsFileError, match=r"weights file .*scripted.pth: "):
            read_weights_file(path, "scripted.pth", check_hash=False)   # a VGG19/FID file alike
    assert [str(w.message) for w in caught] == []


def test_a_trial_checkpoint_is_noted_by_the_first_process_only(monkeypatch, caplog):
    """Every process of a torchrun run reads the teacher's file: each printed the warning."""
    import logging

    from utils.checkpoint import note_trial
    from utils.logging_utils import LOGGER_NAME
    trial = {"format": CHECKPOINT_FORMAT, "stage": "pb_gen", "step": 2, "steps_per_epoch": 4,
             "config": {"niter": 1, "niter_decay": 1, "max_steps": 2}}
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    for rank, said in ((1, False), (0, True)):
        monkeypatch.setattr(torch.distributed, "get_rank", lambda rank=rank: rank)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            note_trial(trial, "t.pth", "--pb_checkpoint")
        assert ("--pb_checkpoint: t.pth stopped at step 2 of its schedule's 8 (--max_steps)"
                in caplog.text) is said


def test_a_checkpoint_cut_short_by_a_full_disk_is_one_line(tmp_path):
    """torch.save's writer reports a short write ('unexpected pos') as a RuntimeError, which
    ended training in a traceback. A file-size limit stands in for the full disk."""
    import subprocess
    import sys
    from pathlib import Path
    code = (
        "import resource, signal, sys, torch\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))\n"
        "from utils.checkpoint import CheckpointError, save_atomic\n"
        "try:\n"
        "    save_atomic({'w': torch.zeros(1000000)}, sys.argv[1])\n"
        "except CheckpointError as error:\n"
        "    print(error)\n")
    target = tmp_path / "latest.pth"
    done = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True,
                          text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == (f"cannot write {target} (the file system took less than was "
                                   f"written: is the disk full?); the previous file, if any, "
                                   f"is left as it was")
    assert list(tmp_path.iterdir()) == []
