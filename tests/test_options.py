"""Options: paper defaults, YAML files, precedence, and errors that name what is wrong."""

from pathlib import Path

import pytest

from options import ConfigError, parse_config, write_config

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
    assert cfg.warp_channels == [64, 128, 256, 256, 256]
    assert (cfg.fpn_dim, cfg.ngf, cfg.align_corners) == (256, 64, True)
    assert (cfg.checkpoints_dir, cfg.amp, cfg.device, cfg.grad_clip) == ("checkpoints", "none",
                                                                         "auto", 0.0)
    assert cfg.allow_random_vgg is False and cfg.resume is False


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


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        parse_config(["--config", str(tmp_path / "absent.yaml")], default_name="x")


@pytest.mark.parametrize("argv, message", [(["--height", "100"], "--height 100"),
                                           (["--width", "48"], "--width 48"),
                                           (["--warp_channels", "8,8"], "--warp_channels"),
                                           (["--batch_size", "0"], "--batch_size"),
                                           (["--niter", "0", "--niter_decay", "0"], "--niter"),
                                           (["--lr", "0"], "--lr"),
                                           (["--name", "a/b"], "--name")])
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
