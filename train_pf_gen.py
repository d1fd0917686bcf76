"""Stage 4: the parser-free student, warp and generator end to end.

The stage-3 warp (``--pf_warp_checkpoint``) and a new Res-UNet(7) train together on the tutor
image: the generator sees the tutor image, the warped real garment and its edge, and must
reproduce the real photo. Loss: ``0.25 (warp + distillation) + generator + skin``, where the
skin terms weigh the region the tutor's garment covered but the person's does not
(30 L1 + 2 VGG for the first ``niter`` epochs, then 60 and 4). The teacher stays frozen.

    python train_pf_gen.py --dataroot VITON_traindata --name pf_gen \\
        --pb_checkpoint checkpoints/pb_gen/final.pth \\
        --pf_warp_checkpoint checkpoints/pf_warp/final.pth
"""

import torch

from data.inputs import TryOnInputs
from models import PF_GEN_INPUT, PF_WARP_INPUT, build_generator, build_warp
from models.losses import skin_loss, tryon_loss
from models.tryon import compose
from train_pf_warp import teacher_and_student_warps
from utils.engine import Stage, StepResult, main
from utils.stages import (add_teacher_arguments, load_from_flag, parser_based_teacher,
                          perceptual_loss)


class ParserFreeGenerator(Stage):
    name = "pf_gen"
    trained = ("warp", "gen")
    defaults = {"lr": 5e-5, "niter": 50, "niter_decay": 50}

    def add_arguments(self, parser):
        add_teacher_arguments(parser)
        parser.add_argument("--pf_warp_checkpoint", default=None,
                            help="stage-3 (train_pf_warp.py) checkpoint to start the warp from")
        parser.add_argument("--lr_warp", type=float, default=1e-5,
                            help="learning rate of the warp module (0.2 x the generator's)")

    def build_models(self, cfg, device):
        self.vgg = perceptual_loss(cfg, device)
        models = parser_based_teacher(cfg, device)
        models["warp"] = load_from_flag(build_warp(cfg, PF_WARP_INPUT), cfg,
                                        "pf_warp_checkpoint", "warp", ("pf_warp",)).to(device)
        models["gen"] = build_generator(cfg, PF_GEN_INPUT).to(device)
        return models

    def param_groups(self, models, cfg, epoch):
        # Called at the start of every epoch: the skin weights below depend on the epoch.
        self.epoch = epoch
        return [{"name": "warp", "params": list(models["warp"].parameters()), "lr": cfg.lr_warp},
                {"name": "gen", "params": list(models["gen"].parameters()), "lr": cfg.lr}]

    def losses(self, models, batch, cfg, step, want_images=False):
        inputs = TryOnInputs.from_batch(batch)
        tutor, teacher, student, warp_terms, gate = teacher_and_student_warps(models, inputs,
                                                                              self.vgg)
        terms = {name: 0.25 * value for name, value in warp_terms.items()}
        warped_edge = student.levels[-1].warped_edge
        gen_output = models["gen"](torch.cat([tutor.image, student.warped, warped_edge], 1))
        out = compose(gen_output, student.warped, warped_edge, gate=inputs.person_clothes_edge)
        terms.update(tryon_loss(out.tryon, out.rendered, out.mask, inputs.image, self.vgg))
        skin = tutor.warped_edge * (1 - inputs.person_clothes_edge)
        early = getattr(self, "epoch", 0) < cfg.niter
        terms.update(skin_loss(out.rendered, inputs.image, skin, self.vgg,
                               l1_weight=30 if early else 60, vgg_weight=2 if early else 4))
        images = {"person": inputs.image, "tutor": tutor.image, "garment": inputs.garment,
                  "warped_garment": student.warped, "warped_edge": warped_edge,
                  "rendered": out.rendered, "mask": out.mask, "tryon": out.tryon}
        return StepResult.from_terms(terms, images)


if __name__ == "__main__":
    main(ParserFreeGenerator())
