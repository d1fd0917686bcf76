"""Stage 1: the parser-based warping module.

Trains AFWM(45) to warp the in-shop garment onto the person, conditioned on the person's face
and other-clothes masks, DensePose (25 one-hot channels) and pose (18 keypoint maps). Loss: the
multi-level warp loss against the garment region of the real photo. Nothing is frozen.

    python train_pb_warp.py --dataroot VITON_traindata --name pb_warp
"""

from models import PB_WARP_INPUT
from models.losses import warp_loss
from models.registry import unwrap
from utils.training.engine import main
from utils.training.parts import (
    batch_inputs,
    build_warp,
    flow_picture,
    flow_scalars,
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
        return {"warp": build_warp(cfg, PB_WARP_INPUT).to(device), "vgg": vgg}

    def param_groups(self, models, cfg, epoch):
        return [{"name": "warp", "params": list(models["warp"].parameters()), "lr": cfg.lr}]

    def validation_outputs(self, models, batch, cfg):
        inputs = batch_inputs(batch, cfg)
        warp = models["warp"](inputs.pb_condition, inputs.garment)
        return warp.warped, inputs.person_clothes

    def losses(self, models, batch, context):
        cfg = context.cfg
        inputs = batch_inputs(batch, cfg)
        warp = models["warp"](inputs.pb_condition, inputs.garment, inputs.garment_edge,
                              return_levels=True)
        terms = warp_loss(warp.levels, inputs.person_clothes, inputs.person_clothes_edge,
                          models["vgg"])
        align_corners = unwrap(models["warp"]).arch["align_corners"]
        images = {}
        if context.want_images:
            images = {"person": inputs.image, "garment": inputs.garment,
                      "worn_garment": inputs.person_clothes, "warped_garment": warp.warped,
                      "flow": flow_picture(warp, align_corners),
                      "warped_edge": warp.levels[-1].warped_edge}
        return StepResult.from_terms(terms, images, flow_scalars(warp, align_corners))


if __name__ == "__main__":
    main(ParserBasedWarp())
