"""The four stage scripts on the engine: chaining, checkpoints, logs, and learning."""

import os
import shutil

import pytest
import torch

from data.inputs import TryOnInputs
from data.synthetic import make_dataset
from data.viton_dataset import VitonTrainDataset
from models import AFWM
from models.losses import VGGLoss, warp_loss
from options import ConfigError, parse_config
from train_pb_gen import ParserBasedGenerator
from train_pb_warp import ParserBasedWarp
from train_pf_gen import ParserFreeGenerator, skin_weights
from train_pf_warp import STUDENT_NEW_PARTS, ParserFreeWarp
from utils.checkpoint import CheckpointError, read_checkpoint, stopped_early
from utils.training.earlier_stages import warp_learning_rate
from utils.training.engine import main, run


def _config(stage, *argv):
    return parse_config(list(argv), stage.add_arguments, stage.defaults, default_name=stage.name)


def test_phase_and_skin_weight_switch_at_the_boundary_epoch():
    """Stage 3 trains only its new parts, and stage 4 uses the early skin weights, for the
    release's niter - 1 epochs (its 1-based test epoch < niter)."""
    last_early = 48
    stage3 = ParserFreeWarp()
    cfg3 = _config(stage3)                                    # niter 100
    warp = {"warp": AFWM(3, channels=(4, 4, 4, 4, 4), fpn_dim=4),
            "pb_warp": AFWM(45, channels=(4, 4, 4, 4, 4), fpn_dim=4)}
    new_parts = {id(p) for p in warp["warp"].parameters()} - {
        id(p) for n, p in warp["warp"].named_parameters()
        if not any(part in n for part in STUDENT_NEW_PARTS)}
    boundary3 = cfg3.niter - 2
    for epoch, expected in ((boundary3, "warp_new_parts"), (boundary3 + 1, "warp")):
        (group,) = stage3.param_groups(warp, cfg3, epoch)
        assert group["name"] == expected, epoch
        params = {id(p) for p in group["params"]}
        assert params == (new_parts if expected == "warp_new_parts"
                          else {id(p) for p in warp["warp"].parameters()})
    # A student of another architecture than its teacher starts from random weights and trains
    # all of it from the first epoch (as DM-VTON's mobile student does).
    from models.mobile import MobileAFWM
    other = {"warp": MobileAFWM(3, fpn_dim=4, width_mult=0.25), "pb_warp": warp["pb_warp"]}
    groups = stage3.param_groups(other, cfg3, 0)
    assert [g["name"] for g in groups] == ["warp"]
    cfg4 = _config(ParserFreeGenerator())                     # niter 50
    assert skin_weights(last_early, cfg4) == (30.0, 2.0)
    assert skin_weights(last_early + 1, cfg4) == (60.0, 4.0)
    assert skin_weights(0, cfg4) == (30.0, 2.0) and skin_weights(99, cfg4) == (60.0, 4.0)


def test_warp_learning_rate_is_tied_to_lr_unless_set():
    for stage in (ParserBasedGenerator(), ParserFreeGenerator()):
        assert warp_learning_rate(_config(stage)) == pytest.approx(1e-5)       # 0.2 x 5e-5
        assert warp_learning_rate(_config(stage, "--lr", "1e-3")) == pytest.approx(2e-4)
        assert warp_learning_rate(_config(stage, "--lr", "1e-3", "--lr_warp", "3e-5")) == 3e-5
        cfg = _config(stage, "--lr", "1e-3")
        groups = {g["name"]: g["lr"] for g in stage.param_groups(
            {"warp": torch.nn.Linear(1, 1), "gen": torch.nn.Linear(1, 1)}, cfg, 0)}
        assert groups == {"warp": pytest.approx(2e-4), "gen": 1e-3}


@pytest.fixture(scope="module")
def train_root(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    make_dataset(str(out), num_train=6, num_test=0, seed=1, height=64, width=64)
    return str(out / "VITON_traindata")


def _args(root, runs, name, *extra):
    return ["--config", "configs/tiny.yaml", "--dataroot", root, "--checkpoints_dir", str(runs),
            "--name", name, "--max_steps", "2", "--vgg_layers", "1", "--log_every", "1",
            "--sample_every", "2", "--device", "cpu", *extra]


def test_four_stages_chain_and_write_checkpoints_and_events(train_root, tmp_path):
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2",
                                      "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    # --max_steps 2 of a 6-step schedule: said where it ends and where its model is used
    # (it said "finished", and scripts/train_all.sh took it for a trained stage).
    assert "stopped at --max_steps 2 (step 2 of the schedule's 6)" in \
        (runs / "s1" / "train.log").read_text()
    assert stopped_early(read_checkpoint(runs / "s1" / "final.pth")) == \
        "step 2 of its schedule's 6"
    assert "s1/final.pth stopped at step 2 of its schedule's 6 (--max_steps)" in \
        (runs / "s2" / "train.log").read_text()
    s3 = run(ParserFreeWarp(), _args(train_root, runs, "s3",
                                     "--pb_checkpoint", str(runs / "s2/final.pth")))
    s4 = run(ParserFreeGenerator(), _args(train_root, runs, "s4",
                                          "--pb_checkpoint", str(runs / "s2/final.pth"),
                                          "--pf_warp_checkpoint", str(runs / "s3/final.pth")))
    for name, stage, models in (("s1", "pb_warp", {"warp"}), ("s2", "pb_gen", {"warp", "gen"}),
                                ("s3", "pf_warp", {"warp"}), ("s4", "pf_gen", {"warp", "gen"})):
        data = read_checkpoint(runs / name / "final.pth")
        assert data["stage"] == stage and set(data["model"]) == models and data["step"] == 2
        assert list((runs / name / "tensorboard").glob("events.out.tfevents.*"))
        assert list((runs / name / "samples").glob("*.png"))
    # Once, though --pb_checkpoint gives both parts of the teacher.
    assert (runs / "s3" / "train.log").read_text().count("s2/final.pth stopped at step") == 1
    for key in ("distill_feature", "distill_flow", "warp_l1"):
        assert key in s3.terms
    for key in ("skin_l1", "gen_l1", "mask_l1", "distill_flow"):
        assert key in s4.terms
    for result in (s3, s4):
        assert 0 <= result.scalars["distill/teacher_better_fraction"] <= 1
        assert {f"flow/level{i}_px" for i in range(5)} <= result.scalars.keys()
    # The student's condition encoder takes the 3-channel tutor image.
    student = s3.models["warp"].state_dict()
    assert student["cond_features.encoders.0.0.block.2.weight"].shape[1] == 3
    # The teacher's two parts from plain state dicts: --pb_checkpoint beside them, which the
    # shell wrappers always give, is said not to be read (it was passed over in silence).
    teacher = read_checkpoint(runs / "s2/final.pth")["model"]
    for part in ("warp", "gen"):
        torch.save(teacher[part], tmp_path / f"{part}.pth")
    parts = run(ParserFreeWarp(), _args(train_root, runs, "s3_parts", "--max_steps", "1",
                                        "--pb_checkpoint", str(tmp_path / "absent.pth"),
                                        "--pb_warp_checkpoint", str(tmp_path / "warp.pth"),
                                        "--pb_gen_checkpoint", str(tmp_path / "gen.pth")))
    loaded = parts.models["pb_gen"].state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in teacher["gen"].items())
    assert (f"--pb_checkpoint {tmp_path / 'absent.pth'} is not read: --pb_warp_checkpoint and "
            f"--pb_gen_checkpoint give both parts") in (runs / "s3_parts/train.log").read_text()


def test_stage3_first_epochs_train_only_the_new_parts(train_root, tmp_path):
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2",
                                      "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    teacher = read_checkpoint(runs / "s2/final.pth")["model"]["warp"]
    # --niter 2: the release's first phase is epoch 0 only (1-based epoch 1 < niter).
    s3 = run(ParserFreeWarp(), _args(train_root, runs, "s3", "--niter", "2",
                                     "--pb_checkpoint", str(runs / "s2/final.pth")))
    student = s3.models["warp"].state_dict()
    for name, value in student.items():
        if not value.is_floating_point() or "running" in name:
            continue
        carried = not any(part in name for part in STUDENT_NEW_PARTS)
        if carried:  # loaded from the teacher and frozen during the first niter epochs
            assert torch.equal(value, teacher[name]), name
    changed = [n for n in student if n.startswith("cond_features") and "weight" in n
               and n in teacher and student[n].shape == teacher[n].shape
               and not torch.equal(student[n], teacher[n])]
    assert changed, "the condition encoder should have trained"


def test_missing_or_wrong_earlier_checkpoints_stop_at_start(train_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    with pytest.raises(CheckpointError, match="--pb_warp_checkpoint is required"):
        run(ParserBasedGenerator(), _args(train_root, runs, "a"))
    with pytest.raises(CheckpointError, match=r"--pb_warp_checkpoint: file not found: .*nope"):
        run(ParserBasedGenerator(), _args(train_root, runs, "b", "--pb_warp_checkpoint",
                                          str(tmp_path / "nope.pth")))
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    with pytest.raises(CheckpointError, match=r"--pb_checkpoint: .*'pb_warp' checkpoint; "
                                              r"expected one of \['pb_gen'\]"):
        run(ParserFreeWarp(), _args(train_root, runs, "c", "--pb_checkpoint",
                                    str(runs / "s1/final.pth")))
    # Stage 2 goes on training the warp of its stage-1 file: a warp width flag, which that
    # file overrides, is an error naming both.
    with pytest.raises(SystemExit) as stop:
        run(ParserBasedGenerator(), _args(train_root, runs, "d", "--pb_warp_checkpoint",
                                          str(runs / "s1/final.pth"), "--fpn_dim", "16"))
    assert stop.value.code == 2
    assert "--fpn_dim" in capsys.readouterr().err
    continued = run(ParserBasedGenerator(), _args(train_root, runs, "d", "--pb_warp_checkpoint",
                                                  str(runs / "s1/final.pth"), "--max_steps", "1"))
    assert continued.models["warp"].arch == read_checkpoint(runs / "s1/final.pth")["arch"]["warp"]
    # A plain state dict of the other kind of warp (as the release's parser-free
    # warp_model_final.pth is) failed at the first step with a traceback, its folder made.
    from tests.small_models import small_models
    parser_free = tmp_path / "warp_model_final.pth"
    torch.save(small_models(0)[0].state_dict(), parser_free)
    with pytest.raises(CheckpointError, match=f"--pb_warp_checkpoint: {parser_free} holds a warp "
                                              f"of 3 input channels; this stage continues one "
                                              f"of 45 .is it the parser-based warp of stage 1"):
        run(ParserBasedGenerator(), _args(train_root, runs, "e", "--pb_warp_checkpoint",
                                          str(parser_free)))
    # DCI-VTON's warp (a stage-1 architecture of its own condition) failed at the first step.
    from tests.family_weights import write_family_weights
    (dcivton,) = write_family_weights("dcivton", tmp_path / "dcivton")
    with pytest.raises(CheckpointError, match="of 16 input channels; this stage continues one "
                                              "of 45 .a dcivton warp takes its own condition"):
        run(ParserBasedGenerator(), _args(train_root, runs, "e", "--pb_warp_checkpoint",
                                          str(dcivton)))
    parser_based = tmp_path / "pb_warp.pth"
    torch.save(continued.models["warp"].state_dict(), parser_based)
    with pytest.raises(CheckpointError, match="holds a warp of 45 input channels; this stage "
                                              "continues one of 3 .is it the parser-free warp"):
        run(ParserFreeGenerator(), _args(train_root, runs, "f", "--pb_checkpoint",
                                         str(runs / "d/final.pth"), "--pf_warp_checkpoint",
                                         str(parser_based)))
    assert not (runs / "e").exists() and not (runs / "f").exists()


def test_warp_loss_falls_on_a_fixed_batch(train_root):
    torch.manual_seed(0)
    dataset = VitonTrainDataset(train_root, 64, 64, seed=0)
    batch = {k: torch.stack([dataset[i][k] for i in range(2)]) for k in
             ("image", "garment", "garment_edge", "label", "densepose", "keypoints",
              "unpaired_garment", "unpaired_garment_edge")}
    inputs = TryOnInputs.from_batch(batch)
    model = AFWM(45, channels=(16, 32, 32, 32, 32), fpn_dim=32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.999))
    no_vgg = VGGLoss(None, 0)
    totals, data_terms = [], []
    for _ in range(50):
        out = model(inputs.pb_condition, inputs.garment, inputs.garment_edge, return_levels=True)
        terms = warp_loss(out.levels, inputs.person_clothes, inputs.person_clothes_edge, no_vgg)
        loss = sum(terms.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
        data_terms.append((terms["warp_l1"] + terms["warp_edge"]).item())
    # The appearance and edge terms fall to well under half their start. At 64x64 the
    # second-order term of the coarsest (4x4, 8x8) flows, dominated by their borders, falls
    # slowly, so the total falls by less.
    assert min(data_terms[-5:]) < 0.4 * data_terms[0], data_terms[::10]
    assert min(totals[-5:]) < 0.75 * totals[0], totals[::10]


def test_stage3_resume_across_the_phase_boundary_is_exact(train_root, tmp_path):
    """Stage 3 with --niter 2: epoch 0 (3 steps) trains the new parts, epoch 1 all of it with
    a fresh Adam. 4 steps in one go == 3 steps, stop at the boundary, --resume, 1 more."""
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2",
                                      "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    common = ("--niter", "2", "--niter_decay", "1", "--sample_every", "0",
              "--pb_checkpoint", str(runs / "s2/final.pth"))
    whole = run(ParserFreeWarp(), _args(train_root, runs, "whole", *common, "--max_steps", "4"))
    run(ParserFreeWarp(), _args(train_root, runs, "split", *common, "--max_steps", "3"))
    resumed = run(ParserFreeWarp(), _args(train_root, runs, "split", *common, "--max_steps",
                                          "4", "--resume"))
    assert whole.optimizer_builds == [(0, ("warp_new_parts",)), (1, ("warp",))]
    assert resumed.optimizer_builds == [(1, ("warp",))]
    for name, value in whole.models["warp"].state_dict().items():
        assert torch.equal(value, resumed.models["warp"].state_dict()[name]), name
    assert whole.terms == resumed.terms


def test_resume_refuses_a_teacher_other_than_the_runs(train_root, tmp_path, user_error):
    # The student went on distilling from whatever file now had the teacher's name.
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    for name, steps in (("s2", "2"), ("other", "1")):
        run(ParserBasedGenerator(), _args(train_root, runs, name, "--max_steps", steps,
                                          "--pb_warp_checkpoint", str(runs / "s1/final.pth")))
    teacher = runs / "s2" / "final.pth"
    common = ("--sample_every", "0", "--pb_checkpoint", str(teacher))
    run(ParserFreeWarp(), _args(train_root, runs, "s3", *common, "--max_steps", "1"))
    kept = teacher.read_bytes()
    teacher.write_bytes((runs / "other" / "final.pth").read_bytes())
    message = user_error(lambda: main(ParserFreeWarp(), _args(train_root, runs, "s3", *common,
                                                              "--resume")))
    assert f"--resume: {runs / 's3' / 'latest.pth'} trained beside other weights of the frozen " \
           f"pb_gen, pb_warp than those given now" in message
    # Weights chosen by a flag: the flag is named (it blamed the files alone).
    message = user_error(lambda: main(ParserFreeWarp(), _args(
        train_root, runs, "s3", "--sample_every", "0", "--resume", "--pb_checkpoint",
        str(runs / "other" / "final.pth"))))
    assert f"--pb_checkpoint was {str(teacher)!r}, now " in message, message
    teacher.write_bytes(kept)           # its own teacher again, under the same name
    assert run(ParserFreeWarp(), _args(train_root, runs, "s3", *common, "--resume")).step == 2


def test_resume_needs_no_file_of_a_module_the_run_continues(train_root, tmp_path):
    # Stage 2 and 4 go on training the warp of stages 1 and 3, whose weights and architecture
    # the run's own latest.pth holds: --resume asked for the earlier file all the same.
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    s2 = ("--sample_every", "0", "--pb_warp_checkpoint", str(runs / "s1/final.pth"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2", *s2))
    # A student narrower than the teacher trains an adapter, which latest.pth holds too.
    run(ParserFreeWarp(), _args(train_root, runs, "s3", "--fpn_dim", "16", "--pb_checkpoint",
                                str(runs / "s2/final.pth")))
    s4 = ("--sample_every", "0", "--pb_checkpoint", str(runs / "s2/final.pth"),
          "--pf_warp_checkpoint", str(runs / "s3/final.pth"))
    run(ParserFreeGenerator(), _args(train_root, runs, "s4", *s4, "--max_steps", "1"))
    for earlier in ("s1", "s3"):
        shutil.rmtree(runs / earlier)
    resumed = run(ParserFreeGenerator(), _args(train_root, runs, "s4", *s4, "--resume"))
    assert "latest.pth stopped at step 1" not in (runs / "s4/train.log").read_text()
    assert resumed.step == 2 and "adapter" in read_checkpoint(runs / "s4/final.pth")["model"]
    assert resumed.models["warp"].arch["fpn_dim"] == 16
    # --gen_init only chooses where a new run's generator starts; --resume restores it.
    with pytest.raises(ConfigError, match=r"--resume: --gen_init teacher would change nothing: "
                                          r".*s4/latest.pth continues weights that started as "
                                          r"--gen_init random said"):
        run(ParserFreeGenerator(), _args(train_root, runs, "s4", *s4, "--resume", "--gen_init",
                                         "teacher"))
    # Another file named on --resume was not read, but config.yaml recorded the run as started
    # from it.
    with pytest.raises(ConfigError, match=r"--pb_warp_checkpoint .*other.pth: --resume continues "
                                          r"the warp of .*s2/latest.pth, which started from "
                                          r".*s1/final.pth; leave the flag out"):
        run(ParserBasedGenerator(), _args(train_root, runs, "s2", *s2[:-1],
                                          str(tmp_path / "other.pth"), "--resume"))
    # The same file named another way (as scripts/train_all.sh may name it) is that file.
    resumed = run(ParserBasedGenerator(), _args(train_root, runs, "s2", *s2[:-1],
                                                f"{runs}/./s1/final.pth", "--resume",
                                                "--max_steps", "3"))
    assert resumed.step == 3


def test_schedule_script_prints_the_release_boundaries(capsys):
    from scripts import schedule
    schedule.main(["--stage", "pf_warp", "--all"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "epoch  98 (release's  99): factor 1.0000  lr 3e-05  new parts only" in lines
    assert "epoch  99 (release's 100): factor 1.0000  lr 3e-05  all parameters" in lines
    assert "epoch 101 (release's 102): factor 0.9900  lr 2.97e-05  all parameters" in lines
    schedule.main(["--stage", "pf_gen"])
    out = capsys.readouterr().out
    assert "epoch  99 (release's 100): factor 0.0200  lr 1e-06, warp 2e-07  skin 60 / 4" in out


def test_gen_init_teacher_copies_the_teacher_generator_without_its_arm_mask_channel():
    from models.registry import arch_from_flags, build_model
    from options import ConfigError
    from train_pf_gen import start_from_teacher

    def generator(input_nc, type="resunet", **flags):
        return build_model(arch_from_flags("gen", type, input_nc, flags))

    teacher, student = generator(8, ngf=8), generator(7, ngf=8)
    start_from_teacher(student, teacher, "--gen_init")
    mine, theirs = student.state_dict(), teacher.state_dict()
    first = "model.model.0.weight"
    assert mine[first].shape[1] == 7 and torch.equal(mine[first], theirs[first][:, :7])
    for key in theirs.keys() - {first}:
        assert torch.equal(mine[key], theirs[key]), key
    with pytest.raises(ConfigError, match=r"ngf \(16 vs the teacher's 8\)"):
        start_from_teacher(generator(7, ngf=16), teacher, "--gen_init")
    with pytest.raises(ConfigError, match=r"type \(mobile vs the teacher's resunet\)"):
        start_from_teacher(generator(7, "mobile"), teacher, "--gen_init")


def test_frozen_running_statistics_keep_their_batch_count():
    """Stage 4's tutor pass leaves the generator's BatchNorm buffers as they were, the batch
    count included: a cumulative average (--bn_recalibration) counts only the photo passes."""
    from utils.training.batch_norm import running_statistics_frozen

    norm = torch.nn.BatchNorm2d(3)
    norm(torch.randn(2, 3, 4, 4))
    before = {key: value.clone() for key, value in norm.state_dict().items()}
    with running_statistics_frozen(norm):
        norm(torch.randn(2, 3, 4, 4) * 5 + 2)
    for key, value in norm.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert norm.momentum == 0.1


def test_max_dataset_size_trains_on_the_first_samples_only(train_root):
    stage = ParserBasedWarp()
    cfg = _config(stage, "--config", "configs/tiny.yaml", "--dataroot", train_root,
                  "--max_dataset_size", "4")
    dataset = stage.make_dataset(cfg)
    assert [sample.person.id for sample in dataset.samples] == [f"{i:06d}" for i in range(4)]
    assert "4 samples (the first: --max_dataset_size)" in stage.describe_dataset(dataset, cfg)[0]
    everything = _config(stage, "--config", "configs/tiny.yaml", "--dataroot", train_root)
    assert len(stage.make_dataset(everything)) == 6
    # More than the data holds takes all of it, and the log says so: it passed unnoticed.
    more = _config(stage, "--config", "configs/tiny.yaml", "--dataroot", train_root,
                   "--max_dataset_size", "50")
    assert "6 samples (all: --max_dataset_size 50 is more)" in stage.describe_dataset(
        stage.make_dataset(more), more)[0]
    with pytest.raises(ConfigError, match="--max_dataset_size must not be negative"):
        _config(stage, "--dataroot", train_root, "--max_dataset_size", "-1")


def test_resume_with_other_architecture_flags_names_them(train_root, tmp_path, user_error):
    # It was a list of a hundred missing and unexpected keys.
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1", "--max_steps", "1"))
    message = user_error(lambda: main(ParserBasedWarp(), _args(
        train_root, runs, "s1", "--resume", "--fpn_dim", "16")))
    assert "holds another architecture: --fpn_dim was 32, now 16; resume without changing" \
        in message
    # A folder given as an earlier stage's file was "file not found".
    message = user_error(lambda: main(ParserBasedGenerator(), _args(
        train_root, runs, "s2", "--pb_warp_checkpoint", str(runs / "s1"))))
    assert f"--pb_warp_checkpoint: a folder, not a file: {runs / 's1'}" in message


def test_the_log_says_when_training_pairs_list_another_persons_garment(tmp_path):
    """The warp's target is the garment the person wears: a pairs list dressing persons in
    other garments trained on without a word."""
    made = make_dataset(str(tmp_path), num_train=3, num_test=0, seed=1, height=64, width=64)
    root = made["train"]
    persons = sorted(os.listdir(os.path.join(root, "train_img")))
    garments = sorted(os.listdir(os.path.join(root, "train_color")))
    stage = ParserBasedWarp()
    cfg = _config(stage, "--dataroot", root, "--height", "64", "--width", "64")
    assert not [line for line in stage.describe_dataset(stage.make_dataset(cfg), cfg)
                if "training pairs list a garment of another id" in line]
    with open(os.path.join(root, "train_pairs.txt"), "w") as pairs:
        pairs.writelines(f"{person} {garment}\n"
                         for person, garment in zip(persons, garments[1:] + garments[:1]))
    lines = stage.describe_dataset(stage.make_dataset(cfg), cfg)
    assert f"3 of 3 training pairs list a garment of another id than the person's (the first: " \
           f"{persons[0]} {garments[1]})" in "\n".join(lines)


def test_an_earlier_stage_file_of_another_size_is_noted(train_root, tmp_path):
    """A warp trained at one size continued at another, without a word in the log."""
    runs = tmp_path / "runs"
    run(ParserBasedWarp(), _args(train_root, runs, "s1"))
    run(ParserBasedGenerator(), _args(train_root, runs, "s2", "--pb_warp_checkpoint",
                                      str(runs / "s1" / "final.pth"), "--height", "96",
                                      "--width", "64"))
    assert (f"--pb_warp_checkpoint: {runs / 's1' / 'final.pth'} was trained at 64x64; this run "
            f"works at 96x64") in (runs / "s2" / "train.log").read_text()
