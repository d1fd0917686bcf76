"""Stage 4: the parser-free student, warp and generator end to end.

The stage-3 warp (``--pf_warp_checkpoint``) and a new Res-UNet(7) train together on the tutor
image: the generator sees the tutor image, the warped real garment and its edge, and must
reproduce the real photo. Loss: ``0.25 (warp + distillation) + generator + skin``, where the
skin terms weigh the region the tutor's garment covered but the person's does not
(30 L1 + 2 VGG during "the first niter epochs", then 60 and 4). The teacher stays frozen. The
warp learns at ``--lr_warp`` (default 0.2 x ``--lr``, tied as in the release), the generator
at ``--lr``. The early skin weights last the release's ``niter - 1`` epochs and the rates decay
as the release's. The generator's BatchNorm running statistics follow the real photos (an
extra no-grad pass; ``--bn_statistics tutor``: the release's, of the tutor images). The
generator starts from random weights, as in the release, or with ``--gen_init teacher`` from
the teacher's generator (docs/differences.md).

    python train_pf_gen.py --dataroot VITON_traindata --name pf_gen \\
        --pb_checkpoint checkpoints/pb_gen/final.pth \\
        --pf_warp_checkpoint checkpoints/pf_warp/final.pth
"""

from contextlib import nullcontext

import torch
from torch import nn

from models import PF_GEN_INPUT, PF_WARP_INPUT
from models.losses import skin_loss, tryon_loss
from models.registry import unwrap
from models.tryon import compose, parser_free_tryon
from options.config import ConfigError
from utils.checkpoint import (
    CheckpointError,
    StateMismatch,
    is_project_checkpoint,
    read_checkpoint,
)
from utils.training.batch_norm import running_statistics_frozen, track_running_statistics
from utils.training.earlier_stages import (
    add_warp_lr_argument,
    build_generator,
    check_earlier_stages,
    continue_from_flag,
    resumed_checkpoint,
    warp_learning_rate,
)
from utils.training.engine import main
from utils.training.parts import batch_inputs, flow_picture, flow_scalars, perceptual_loss
from utils.training.schedule import in_first_phase
from utils.training.stage import Stage, StepResult
from utils.training.students import (
    add_bn_statistics_argument,
    add_teacher_arguments,
    check_kd_group,
    distillation_adapter,
    load_from_flag,
    parser_based_teacher,
    teacher_and_student_warps,
)


def start_from_teacher(student: nn.Module, teacher: nn.Module, flag: str) -> None:
    """Copy the teacher generator's weights into the student's (``--gen_init teacher``; the
    release starts the student from random weights). The inputs correspond channel for
    channel, the teacher's preserved region to the student's person photo, then the warped
    garment and its edge; the teacher's last input channel (the arm mask) has no counterpart
    and its weights are dropped."""
    mine, theirs = unwrap(student).arch, unwrap(teacher).arch
    differ = sorted(key for key in set(mine) | set(theirs)
                    if key != "input_nc" and mine.get(key) != theirs.get(key))
    if differ:
        raise ConfigError(f"{flag} teacher: the student generator must be the teacher's "
                          f"architecture with its widths, but they differ in " + ", ".join(
                              f"{key} ({mine.get(key)} vs the teacher's {theirs.get(key)})"
                              for key in differ))
    state = student.state_dict()
    for key, value in teacher.state_dict().items():
        if value.dim() == 4 and value.shape[1] != state[key].shape[1]:
            value = value[:, :state[key].shape[1]]       # the first layer's input channels
        state[key] = value.detach().clone()
    student.load_state_dict(state)


EARLY_SKIN_WEIGHTS = (30.0, 2.0)   # (L1, VGG) during the first phase
LATE_SKIN_WEIGHTS = (60.0, 4.0)


def skin_weights(epoch: int, cfg) -> tuple[float, float]:
    """(L1, VGG) weights of the skin terms in 0-based ``epoch``."""
    return EARLY_SKIN_WEIGHTS if in_first_phase(epoch, cfg.niter) \
        else LATE_SKIN_WEIGHTS


class ParserFreeGenerator(Stage):
    name = "pf_gen"
    trained = ("warp", "gen")
    builds = ("gen",)
    continues = {"warp": "pf_warp_checkpoint"}
    start_flags = ("gen_init",)
    defaults = {"lr": 5e-5, "niter": 50, "niter_decay": 50}
    validation_kind = "tryon"

    def add_arguments(self, parser):
        add_teacher_arguments(parser)
        parser.add_argument("--pf_warp_checkpoint", default=None,
                            help="stage-3 (train_pf_warp.py) checkpoint to start the warp from")
        add_warp_lr_argument(parser)
        add_bn_statistics_argument(parser)
        parser.add_argument("--gen_init", default="random", choices=("random", "teacher"),
                            help="what the generator starts from: random weights (the release) "
                                 "or the teacher's generator, of the same architecture and "
                                 "widths (its first layer without the arm-mask channel)")

    def build_models(self, cfg, device):
        check_kd_group(cfg)
        check_earlier_stages(cfg, "teacher", "pf_warp_checkpoint")
        vgg = perceptual_loss(cfg, device)
        models = {**parser_based_teacher(cfg, device), "vgg": vgg}
        models["warp"] = continue_from_flag(cfg, "pf_warp_checkpoint", "warp", ("pf_warp",),
                                            input_nc=PF_WARP_INPUT).to(device)
        models["gen"] = build_generator(cfg, PF_GEN_INPUT).to(device)
        if cfg.gen_init == "teacher":
            start_from_teacher(models["gen"], models["pb_gen"], "--gen_init")
        adapter = distillation_adapter(models["pb_warp"], models["warp"])
        if adapter is not None:
            if resumed_checkpoint(cfg) is None:   # else --resume restores it with the rest
                try:
                    load_from_flag(adapter, cfg, "pf_warp_checkpoint", "adapter", ("pf_warp",))
                except StateMismatch:
                    if is_project_checkpoint(read_checkpoint(cfg.pf_warp_checkpoint)):
                        raise       # an adapter of other widths: the mismatch says which
                    raise CheckpointError(
                        f"--pf_warp_checkpoint {cfg.pf_warp_checkpoint}: no adapter from the "
                        f"student's {adapter.levels[0].in_channels}-channel pyramid to the "
                        f"teacher's {adapter.levels[0].out_channels} in it (a released warp "
                        f"has none): stage 3 with this teacher writes one") from None
            models["adapter"] = adapter.to(device)
        return models

    def trained_models(self, models):
        return self.trained + (("adapter",) if "adapter" in models else ())

    def param_groups(self, models, cfg, epoch):
        groups = [{"name": "warp", "params": list(models["warp"].parameters()),
                   "lr": warp_learning_rate(cfg)},
                  {"name": "gen", "params": list(models["gen"].parameters()), "lr": cfg.lr}]
        if "adapter" in models:
            groups.append({"name": "adapter", "params": list(models["adapter"].parameters()),
                           "lr": warp_learning_rate(cfg)})
        return groups

    def validation_outputs(self, models, batch, cfg):
        # The try-on of test.py: person photo, garment and its mask alone.
        out = parser_free_tryon(models["warp"], models["gen"], batch["image"], batch["garment"],
                                batch["garment_edge"])
        return out.tryon, batch["image"]

    def losses(self, models, batch, context):
        align_corners = unwrap(models["warp"]).arch["align_corners"]
        cfg, vgg = context.cfg, models["vgg"]
        inputs = batch_inputs(batch, cfg)
        out = teacher_and_student_warps(models, inputs, vgg, cfg.kd_group_size)
        terms = {name: 0.25 * value for name, value in out.terms.items()}
        warped_edge = out.student.levels[-1].warped_edge
        photos = cfg.bn_statistics == "photos"
        with running_statistics_frozen(models["gen"]) if photos else nullcontext():
            gen_output = models["gen"](torch.cat([out.tutor.image, out.student.warped,
                                                  warped_edge], 1))
        if photos:
            # Differs from the release on purpose: the BatchNorm statistics of the photos that
            # test.py feeds the generator, not of the tutor images it trains on.
            track_running_statistics(models["gen"], torch.cat(
                [inputs.image, out.student.warped.detach(), warped_edge.detach()], 1))
        composite = compose(gen_output, out.student.warped, warped_edge,
                            gate=inputs.person_clothes_edge)
        terms.update(tryon_loss(composite.tryon, composite.rendered, composite.mask,
                                inputs.image, vgg))
        skin = out.tutor.warped_edge * (1 - inputs.person_clothes_edge)
        l1_weight, vgg_weight = skin_weights(context.epoch, cfg)
        terms.update(skin_loss(composite.rendered, inputs.image, skin, vgg,
                               l1_weight=l1_weight, vgg_weight=vgg_weight))
        images = {}
        if context.want_images:
            images = {"person": inputs.image, "tutor": out.tutor.image,
                      "garment": inputs.garment, "warped_garment": out.student.warped,
                      "flow": flow_picture(out.student, align_corners),
                      "warped_edge": warped_edge, "rendered": composite.rendered,
                      "mask": composite.mask, "try_on": composite.tryon}
        scalars = {"distill/teacher_better_fraction": out.gate.mean(),
                   **flow_scalars(out.student, align_corners)}
        return StepResult.from_terms(terms, images, scalars)


if __name__ == "__main__":
    main(ParserFreeGenerator())
