"""Stage 2: the parser-based teacher, warp and generator end to end.

The stage-1 warp (``--pb_warp_checkpoint``) and a new Res-UNet(8) train together. The generator
sees the preserved person (face, other clothes, hands), the warped garment and its edge, and the
DensePose arm mask outside the person's garment; its mask is gated by the person's garment
region. Loss: ``0.5 warp + generator``. The warp learns at ``--lr_warp`` (default 0.2 x
``--lr``, 1e-5, tied as in the release), the generator at ``--lr`` (5e-5).

    python train_pb_gen.py --dataroot VITON_traindata --name pb_gen \\
        --pb_warp_checkpoint checkpoints/pb_warp/final.pth
"""

import torch

from data.inputs import arms_outside
from models import PB_GEN_INPUT, PB_WARP_INPUT
from models.losses import tryon_loss, warp_loss
from models.registry import unwrap
from models.tryon import compose, tutor_image
from utils.training.earlier_stages import (
    add_warp_lr_argument,
    build_generator,
    check_earlier_stages,
    continue_from_flag,
    warp_learning_rate,
)
from utils.training.engine import main
from utils.training.parts import batch_inputs, flow_picture, flow_scalars, perceptual_loss
from utils.training.stage import Stage, StepResult


class ParserBasedGenerator(Stage):
    name = "pb_gen"
    trained = ("warp", "gen")
    builds = ("gen",)
    continues = {"warp": "pb_warp_checkpoint"}
    defaults = {"lr": 5e-5, "niter": 50, "niter_decay": 50}
    validation_kind = "tryon"
    validation_needs_parser = True

    def add_arguments(self, parser):
        parser.add_argument("--pb_warp_checkpoint", default=None,
                            help="stage-1 (train_pb_warp.py) checkpoint to start the warp from")
        add_warp_lr_argument(parser)

    def build_models(self, cfg, device):
        check_earlier_stages(cfg, "pb_warp_checkpoint")
        vgg = perceptual_loss(cfg, device)
        # The teacher's warp takes the parser-based condition, whatever stage 1 trained.
        warp = continue_from_flag(cfg, "pb_warp_checkpoint", "warp", ("pb_warp",),
                                  input_nc=PB_WARP_INPUT)
        return {"warp": warp.to(device), "gen": build_generator(cfg, PB_GEN_INPUT).to(device),
                "vgg": vgg}

    def param_groups(self, models, cfg, epoch):
        return [{"name": "warp", "params": list(models["warp"].parameters()),
                 "lr": warp_learning_rate(cfg)},
                {"name": "gen", "params": list(models["gen"].parameters()), "lr": cfg.lr}]

    def validation_outputs(self, models, batch, cfg):
        # The teacher's try-on as the tutor makes it for stages 3 and 4.
        inputs = batch_inputs(batch, cfg)
        tutor = tutor_image(models["warp"], models["gen"], inputs.pb_condition,
                            inputs.preserve_region, inputs.dense_preserve_mask, inputs.garment,
                            inputs.garment_edge)
        return tutor.image, inputs.image

    def losses(self, models, batch, context):
        align_corners = unwrap(models["warp"]).arch["align_corners"]
        cfg, vgg = context.cfg, models["vgg"]
        inputs = batch_inputs(batch, cfg)
        warp = models["warp"](inputs.pb_condition, inputs.garment, inputs.garment_edge,
                              return_levels=True)
        terms = {name: 0.5 * value for name, value in
                 warp_loss(warp.levels, inputs.person_clothes, inputs.person_clothes_edge,
                           vgg).items()}
        warped_edge = warp.levels[-1].warped_edge
        arms = arms_outside(inputs.dense_preserve_mask, inputs.person_clothes_edge)
        gen_output = models["gen"](torch.cat([inputs.preserve_region, warp.warped, warped_edge,
                                              arms], 1))
        out = compose(gen_output, warp.warped, warped_edge, gate=inputs.person_clothes_edge)
        terms.update(tryon_loss(out.tryon, out.rendered, out.mask, inputs.image, vgg))
        images = {}
        if context.want_images:
            images = {"person": inputs.image, "garment": inputs.garment,
                      "warped_garment": warp.warped, "flow": flow_picture(warp, align_corners),
                      "warped_edge": warped_edge, "rendered": out.rendered, "mask": out.mask,
                      "try_on": out.tryon}
        return StepResult.from_terms(terms, images, flow_scalars(warp, align_corners))


if __name__ == "__main__":
    main(ParserBasedGenerator())
