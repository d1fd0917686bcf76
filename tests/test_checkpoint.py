import pickle

import pytest
import torch

from models.afwm import AFWM
from models.generator import ResUnetGenerator
from utils.checkpoint import (CHECKPOINT_FORMAT, CheckpointError, load_weights, read_checkpoint,
                              save_atomic)

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
    with pytest.raises(CheckpointError, match=r"'pf_warp' checkpoint; expected one of \['pb_warp'\]"):
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
    assert torch.equal(student.aflow_net.netMain[1][0].weight, teacher.aflow_net.netMain[1][0].weight)


class _Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_files_that_would_run_code_or_are_corrupt_are_refused(tmp_path):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"x": _Payload()}, f)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(evil)
    torn = tmp_path / "torn.pth"
    torch.save(AFWM(3, **SMALL).state_dict(), torn)
    torn.write_bytes(torn.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(torn)
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
