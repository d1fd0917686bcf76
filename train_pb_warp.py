"""Stage 1: the parser-based warping module.

Trains AFWM(45) to warp the in-shop garment onto the person, conditioned on the person's face
and other-clothes masks, DensePose (25 one-hot channels) and pose (18 keypoint maps). Loss: the
multi-level warp loss against the garment region of the real photo. Nothing is frozen.

    python train_pb_warp.py --dataroot VITON_traindata --name pb_warp

A warp architecture may declare another condition: DCI-VTON's (``--warp_arch dcivton``) takes
VITON-HD's parse-agnostic labels and DensePose rendering and the product photo unmasked, and
trains towards the worn garment on white, as its authors' training does:

    python train_pb_warp.py --dataset vitonhd --dataroot VITON-HD --warp_arch dcivton \\
        --name dcivton_warp
"""

from models.losses import warp_loss
from models.registry import unwrap
from utils.training.engine import main
from utils.training.parts import (
    batch_inputs,
    build_warp,
    flow_picture,
    flow_scalars,
    parser_based_warp_inputs,
    pb_warp_input_nc,
    perceptual_loss,
)
from utils.training.stage import Stage, StepResult


class ParserBasedWarp(Stage):
    name = "pb_warp"
    trained = ("warp",)
    builds = ("warp",)
    defaults = {"lr": 5e-5, "niter": 50, "niter_decay": 50}
    validation_kind = "warp"
    validation_needs_parser = True

    def build_models(self, cfg, device):
        vgg = perceptual_loss(cfg, device)
        return {"warp": build_warp(cfg, pb_warp_input_nc(cfg)).to(device), "vgg": vgg}

    def param_groups(self, models, cfg, epoch):
        return [{"name": "warp", "params": list(models["warp"].parameters()), "lr": cfg.lr}]

    def validation_outputs(self, models, batch, cfg):
        given = parser_based_warp_inputs(models["warp"], batch_inputs(batch, cfg))
        return models["warp"](given.cond, given.garment).warped, given.target

    def losses(self, models, batch, context):
        cfg = context.cfg
        inputs = batch_inputs(batch, cfg)
        given = parser_based_warp_inputs(models["warp"], inputs)
        warp = models["warp"](given.cond, given.garment, given.garment_edge, return_levels=True)
        terms = warp_loss(warp.levels, given.target, given.target_edge, models["vgg"])
        align_corners = unwrap(models["warp"]).arch["align_corners"]
        images = {}
        if context.want_images:
            images = {"person": inputs.image, "garment": given.garment,
                      "worn_garment": given.target, "warped_garment": warp.warped,
                      "flow": flow_picture(warp, align_corners),
                      "warped_edge": warp.levels[-1].warped_edge}
        return StepResult.from_terms(terms, images, flow_scalars(warp, align_corners))


if __name__ == "__main__":
    main(ParserBasedWarp())
