"""Options: paper defaults, YAML files, precedence, and errors that name what is wrong."""

import re
from pathlib import Path

import pytest

from models.registry import arch_from_flags
from options import ConfigError, parse_config, write_config
from options.config import architecture_values

ROOT = Path(__file__).resolve().parent.parent


def stage_flags(parser):
    parser.add_argument("--lr_gen", type=float, default=5e-5, help="generator learning rate")
    parser.add_argument("--pb_warp_checkpoint", type=str, default=None, help="stage 1 weights")


def write_yaml(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_defaults_are_the_papers():
    cfg = parse_config([], default_name="pb_warp")
    assert cfg.name == "pb_warp"
    assert (cfg.lr, cfg.beta1, cfg.niter, cfg.niter_decay) == (5e-5, 0.5, 50, 50)
    assert (cfg.height, cfg.width, cfg.batch_size) == (256, 192, 4)
    # Architecture flags left out mean the architecture's own values: the release's widths.
    assert (cfg.warp_arch, cfg.gen_arch) == ("pfafn", "resunet")
    warp = arch_from_flags("warp", cfg.warp_arch, 45, architecture_values(cfg, "warp"))
    gen = arch_from_flags("gen", cfg.gen_arch, 8, architecture_values(cfg, "gen"))
    assert warp["channels"] == [64, 128, 256, 256, 256]
    assert (warp["fpn_dim"], gen["ngf"], warp["align_corners"]) == (256, 64, True)
    assert (cfg.checkpoints_dir, cfg.precision, cfg.device, cfg.grad_clip) == (
        "checkpoints", "fp32", "auto", 0.0)
    assert cfg.allow_random_weights is False and cfg.resume is False


def test_precedence_default_stage_file_command_line(tmp_path):
    config = write_yaml(tmp_path, "lr: 0.001\nniter: 7\nlr_gen: 0.002\nwarp_channels: 8,8,8,8,8\n")
    stage_defaults = {"lr": 3e-5, "niter": 100, "niter_decay": 100}
    cfg = parse_config(["--config", config, "--niter", "3"], stage_flags, stage_defaults, "x")
    assert cfg.lr == 0.001            # file over stage default
    assert cfg.niter == 3             # command line over file
    assert cfg.niter_decay == 100     # stage default over common default
    assert cfg.lr_gen == 0.002        # stage flags can be set from the file
    assert cfg.warp_channels == [8, 8, 8, 8, 8]
    assert cfg.beta1 == 0.5


def test_several_config_files_apply_in_order(tmp_path):
    # A second --config replaced the first one whole, silently.
    first = write_yaml(tmp_path, "lr: 0.001\nniter: 7\nheight: 128\nwidth: 96\n")
    second = tmp_path / "second.yaml"
    second.write_text("niter: 9\nniter_decay: 4\n")
    cfg = parse_config(["--config", first, "--config", str(second), "--niter_decay", "2"],
                       stage_flags, {}, "x")
    assert (cfg.lr, cfg.niter, cfg.niter_decay, cfg.height) == (0.001, 9, 2, 128)
    second.write_text("nitre: 9\n")
    with pytest.raises(ConfigError, match="second.yaml: unknown key 'nitre'"):
        parse_config(["--config", first, "--config", str(second)], stage_flags, {}, "x")


def test_command_line_lists_and_switches():
    cfg = parse_config(["--warp_channels", "16,32,32,32,32", "--no-align_corners"],
                       default_name="x")
    assert cfg.warp_channels == [16, 32, 32, 32, 32]
    assert cfg.align_corners is False


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    config = write_yaml(tmp_path, "height: 64\nlearning_rate: 0.1\n", "typo.yaml")
    with pytest.raises(ConfigError, match=r"typo\.yaml.*unknown key 'learning_rate'"):
        parse_config(["--config", config], default_name="x")


@pytest.mark.parametrize("text, key", [("height: '64'\n", "height"),
                                       ("height: 64.5\n", "height"),
                                       ("align_corners: 'yes'\n", "align_corners"),
                                       ("lr: fast\n", "lr"),
                                       ("amp: fp8\n", "amp"),
                                       ("warp_channels: [16, 'a']\n", "warp_channels")])
def test_wrong_type_in_file_is_an_error(tmp_path, text, key):
    config = write_yaml(tmp_path, text)
    with pytest.raises(ConfigError, match=f"key '{key}'"):
        parse_config(["--config", config], default_name="x")


@pytest.mark.parametrize("text, message", [
    ("lr: 0.001\nlr: 0.002\n", "line 2: key 'lr' again"),
    ("overwrite: true\n", "key 'overwrite' cannot be set inside a config file"),
    ("resume: true\n", "key 'resume' cannot be set inside a config file"),
    # Pillow opens no image of more pixels (a traceback at the first large one).
    ("max_megapixels: 300\n", "key .max_megapixels.: at most 178, what Pillow opens")])
def test_repeated_keys_and_run_control_in_a_file_are_refused(tmp_path, text, message):
    # Each was accepted: the last repeat won, and a shared file could delete or resume runs.
    with pytest.raises(ConfigError, match=message):
        parse_config(["--config", write_yaml(tmp_path, text)], default_name="x")


def test_an_exponent_without_a_point_is_a_number(tmp_path):
    # YAML 1.1 reads 1e-3 as text ("expected a number, got '1e-3'"); --lr 1e-3 was fine.
    cfg = parse_config(["--config", write_yaml(tmp_path, "lr: 1e-3\nbeta1: +5E-1\n")],
                       default_name="x")
    assert (cfg.lr, cfg.beta1) == (0.001, 0.5)


@pytest.mark.parametrize("flags, message", [
    (["--val_every", "5", "--best_metric", "fid"],
     "--val_every, --best_metric: for validation, which --val_root asks"),
    (["--vgg_layers", "0", "--vgg_weights", "v.pth"], "--vgg_weights: for the perceptual loss"),
    (["--max_skipped_steps", "3"], "--max_skipped_steps: for --precision fp16")])
def test_flags_given_where_they_do_nothing_are_refused(tmp_path, flags, message):
    # Each was accepted and did nothing. In a config file (shared by runs with and without
    # validation) they stay allowed, and where they act they are taken.
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_config(flags, default_name="x")
    text = "".join(f"{a[2:]}: {b}\n" for a, b in zip(flags[::2], flags[1::2]))
    parse_config(["--config", write_yaml(tmp_path, text.replace("v.pth", "v"))],
                 default_name="x")
    acting = {"--val_every": ["--val_root", str(tmp_path)], "--vgg_layers": ["--vgg_layers", "5"],
              "--max_skipped_steps": ["--precision", "fp16"]}[flags[0]]
    parse_config(flags + acting, default_name="x")


def test_random_weights_without_a_network_to_take_them_are_refused(tmp_path):
    """--allow_random_weights serves the perceptual loss's VGG19 and validation's LPIPS/FID:
    without either it did nothing."""
    with pytest.raises(ConfigError, match=r"^--allow_random_weights: for the networks of the "
                                          r"perceptual loss \(--vgg_layers 0 here\) and of "
                                          r"validation \(no --val_root here\)$"):
        parse_config(["--vgg_layers", "0", "--allow_random_weights"], default_name="x")
    for acting in (["--vgg_layers", "1"], ["--vgg_layers", "0", "--val_root", str(tmp_path)]):
        assert parse_config([*acting, "--allow_random_weights"],
                            default_name="x").allow_random_weights


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        parse_config(["--config", str(tmp_path / "absent.yaml")], default_name="x")


@pytest.mark.parametrize("argv, message", [(["--height", "100"], "--height 100"),
                                           (["--width", "48"], "--width 48"),
                                           (["--warp_channels", "8,8"], "--warp_channels"),
                                           (["--batch_size", "0"], "--batch_size"),
                                           (["--niter", "0", "--niter_decay", "0"], "--niter"),
                                           (["--lr", "0"], "--lr"),
                                           (["--name", "a/b"], "--name"),
                                           # a folder named by spaces or a line break was made
                                           (["--name", "  "], "--name must be a plain folder"),
                                           (["--name", "run\n2"], "--name must be a plain"),
                                           (["--name", ".."], "--name must be a plain"),
                                           (["--height", "65536"], "larger than 4096"),
                                           (["--warp_channels", "100000,8,8,8,8"],
                                            "larger than 2048"),
                                           (["--ngf", "512"], "larger than 256"),
                                           # 2**32 + 7 trained as --seed 7; 2**64 overflowed
                                           (["--seed", str(2 ** 32 + 7)], "below 2\\*\\*31"),
                                           (["--seed", str(2 ** 64)], "below 2\\*\\*31")])
def test_bad_values_are_rejected(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(argv, default_name="x")


def test_unknown_stage_default_is_an_error():
    with pytest.raises(ConfigError, match="no_such_flag"):
        parse_config([], stage_defaults={"no_such_flag": 1}, default_name="x")


def test_written_config_reads_back_to_the_same_options(tmp_path):
    cfg = parse_config(["--height", "64", "--width", "64", "--no-align_corners", "--resume",
                        "--warp_channels", "8,8,16,16,16"], stage_flags, None, "x")
    write_config(cfg, tmp_path / "config.yaml")
    again = parse_config(["--config", str(tmp_path / "config.yaml")], stage_flags, None, "y")
    differing = {k for k in vars(cfg) if getattr(cfg, k) != getattr(again, k)}
    assert differing == {"config", "resume"}   # per-invocation flags are not written


def test_tiny_config_is_valid():
    cfg = parse_config(["--config", str(ROOT / "configs" / "tiny.yaml")], default_name="x")
    assert (cfg.height, cfg.width, cfg.batch_size, cfg.fpn_dim, cfg.ngf) == (64, 64, 2, 32, 8)
    assert cfg.warp_channels == [16, 32, 32, 32, 32]


def _exit_message(capsys, argv, **stage) -> str:
    with pytest.raises(SystemExit) as stop:
        parse_config(argv, default_name="x", **stage)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("flag, replacement", [("--amp", "--precision"),
                                               ("--allow_random_vgg", "--allow_random_weights"),
                                               ("--save_epoch_freq", "--keep_epoch_every"),
                                               ("--schedule", "the release's")])
def test_a_removed_flag_answers_with_its_replacement_in_one_line(capsys, flag, replacement):
    message = _exit_message(capsys, [flag, "1"])
    assert message.count("\n") == 1 and flag in message and replacement in message


def test_a_stage_takes_only_the_architecture_flags_of_what_it_builds(capsys):
    warp_only = {"builds": ("warp",)}
    assert "builds no generator" in _exit_message(capsys, ["--ngf", "8"], **warp_only)
    continued = {"builds": ("gen",), "continues": {"warp": "pf_warp_checkpoint"}}
    message = _exit_message(capsys, ["--warp_arch", "mobile"], **continued)
    assert "--warp_arch" in message and "--pf_warp_checkpoint" in message
    cfg = parse_config(["--ngf", "8"], default_name="x", **continued)
    assert cfg.ngf == 8 and not hasattr(cfg, "warp_channels")


def test_a_flag_the_chosen_architecture_does_not_take_is_an_error_on_the_command_line():
    with pytest.raises(ConfigError, match="--warp_channels.*mobile"):
        parse_config(["--warp_arch", "mobile", "--warp_channels", "8,8,8,8,8"],
                     default_name="x", builds=("warp",))


def test_a_config_file_serves_every_stage_and_architecture(tmp_path):
    """One file for a whole run: a stage leaves out the flags of what it does not build, and
    of architectures other than the one chosen."""
    config = write_yaml(tmp_path, "warp_channels: 8,8,8,8,8\nfpn_dim: 16\nngf: 8\n")
    stage1 = parse_config(["--config", config], default_name="x", builds=("warp",))
    assert (stage1.warp_channels, stage1.fpn_dim) == ([8] * 5, 16)
    assert not hasattr(stage1, "ngf")
    mobile = parse_config(["--config", config, "--warp_arch", "mobile"], default_name="x",
                          builds=("warp",))
    assert mobile.warp_channels is None and mobile.fpn_dim == 16
    stage2 = parse_config(["--config", config], default_name="x", builds=("gen",),
                          continues={"warp": "pb_warp_checkpoint"})
    assert stage2.ngf == 8 and not hasattr(stage2, "fpn_dim")


def test_resume_continues_the_runs_own_configuration(tmp_path):
    # --resume without the run's flags trained on at the defaults (with a warning each).
    run = ["--checkpoints_dir", str(tmp_path), "--name", "r"]
    cfg = parse_config(run + ["--lr", "0.003", "--niter", "4", "--height", "128", "--width",
                              "96", "--max_steps", "3"], stage_flags, {}, "x")
    (tmp_path / "r").mkdir()
    write_config(cfg, tmp_path / "r" / "config.yaml")   # as the engine does at the start
    resumed = parse_config(run + ["--resume"], stage_flags, {}, "x")
    assert (resumed.lr, resumed.niter, resumed.height, resumed.align_corners) == (
        0.003, 4, 128, cfg.align_corners)
    assert resumed.max_steps != 3    # a per-invocation flag is not the run's
    changed = parse_config(run + ["--resume", "--lr", "0.001"], stage_flags, {}, "x")
    assert (changed.lr, changed.niter) == (0.001, 4)
    # A --config file changes the run too (it was read under the run's config.yaml: ignored).
    more = write_yaml(tmp_path, "lr: 0.005\n", "more.yaml")
    filed = parse_config(run + ["--resume", "--config", more], stage_flags, {}, "x")
    assert (filed.lr, filed.niter) == (0.005, 4)
    assert parse_config(run + ["--resume", "--config", more, "--lr", "0.002"], stage_flags, {},
                        "x").lr == 0.002
    assert parse_config(run, stage_flags, {}, "x").lr == 5e-5   # a new run: the defaults


def test_resume_of_a_run_whose_architecture_leaves_config_flags_unset(tmp_path):
    # A mobile warp's config.yaml holds 'warp_channels: null' (a flag it does not take); under
    # a --config that sets warp_channels, every --resume was refused on that null.
    tiny = write_yaml(tmp_path, "warp_channels: 8,8,8,8,8\nfpn_dim: 16\n", "tiny.yaml")
    run = ["--checkpoints_dir", str(tmp_path), "--name", "m", "--config", tiny]
    cfg = parse_config(run + ["--warp_arch", "mobile"], default_name="x", builds=("warp",))
    (tmp_path / "m").mkdir()
    write_config(cfg, tmp_path / "m" / "config.yaml")
    assert "warp_channels: null" in (tmp_path / "m" / "config.yaml").read_text()
    resumed = parse_config(run + ["--resume"], default_name="x", builds=("warp",))
    assert (resumed.warp_arch, resumed.warp_channels, resumed.fpn_dim) == ("mobile", None, 16)
    # Another stage's run: named as such, not as an unknown key of a --config file.
    other = parse_config(["--checkpoints_dir", str(tmp_path), "--name", "g"], stage_flags, {},
                         "x")
    (tmp_path / "g").mkdir()
    write_config(other, tmp_path / "g" / "config.yaml")
    with pytest.raises(ConfigError, match=r"--resume: .*g is not a run this script continues "
                                          r"\(another stage's\?\): .*unknown key 'lr_gen'"):
        parse_config(["--checkpoints_dir", str(tmp_path), "--name", "g", "--resume"],
                     default_name="x")


@pytest.mark.parametrize("flag", ["--help", "--hel", "-h"])
def test_help_and_its_prefixes_show_the_defaults(flag, capsys):
    # The look for flags given on the command line took "--hel" as a flag and showed none.
    with pytest.raises(SystemExit) as stop:
        parse_config([flag], default_name="x")
    assert stop.value.code == 0
    assert "Adam learning rate (stages may define per-model rates) (default: 5e-05)" in " ".join(
        capsys.readouterr().out.split())
