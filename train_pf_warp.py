"""Stage 3: the parser-free warping module (student), distilled from the teacher.

The frozen stage-2 teacher dresses each person in another garment c' (the tutor image, which
needs the parser). The student AFWM(3) sees only that tutor image and the real garment c and is
supervised by the real photo: the warp loss against the person's garment region, plus feature
and flow distillation from the teacher run on (parser inputs, c), gated per sample to where the
teacher warps better. The student starts from the teacher's warp except its condition encoder,
condition pyramid and refinement heads (new input channels); for the first ``niter`` epochs only
those are optimised, then all.

    python train_pf_warp.py --dataroot VITON_traindata --name pf_warp \\
        --pb_checkpoint checkpoints/pb_gen/final.pth
"""

import torch

from data.inputs import TryOnInputs
from models import PF_WARP_INPUT, build_warp
from models.losses import distillation_gate, distillation_loss, warp_loss
from models.tryon import tutor_image
from utils.engine import Stage, StepResult, main
from utils.stages import (add_teacher_arguments, load_from_flag, named_parameters_matching,
                          parser_based_teacher, perceptual_loss, teacher_source)

# Parameters that do not carry over from the parser-based warp (their inputs differ).
STUDENT_NEW_PARTS = ("cond_", "aflow_net.netRefine")


def teacher_and_student_warps(models, inputs, vgg):
    """Tutor image, teacher warp of the real garment, student warp, and the warp loss with
    distillation (shared with stage 4)."""
    tutor = tutor_image(models["pb_warp"], models["pb_gen"], inputs.pb_condition,
                        inputs.preserve_region, inputs.dense_preserve_mask,
                        inputs.unpaired_garment, inputs.unpaired_garment_edge)
    with torch.no_grad():
        teacher = models["pb_warp"](inputs.pb_condition, inputs.garment, inputs.garment_edge,
                                    return_levels=True)
    student = models["warp"](tutor.image, inputs.garment, inputs.garment_edge,
                             return_levels=True)
    terms = warp_loss(student.levels, inputs.person_clothes, inputs.person_clothes_edge, vgg)
    gate = distillation_gate(teacher.warped, student.warped, inputs.person_clothes)
    terms.update(distillation_loss(teacher.levels, student.levels, gate))
    return tutor, teacher, student, terms, gate


class ParserFreeWarp(Stage):
    name = "pf_warp"
    trained = ("warp",)
    defaults = {"lr": 3e-5, "niter": 100, "niter_decay": 100}

    def add_arguments(self, parser):
        add_teacher_arguments(parser)

    def build_models(self, cfg, device):
        self.vgg = perceptual_loss(cfg, device)
        models = parser_based_teacher(cfg, device)
        flag, _ = teacher_source(cfg, "warp")
        student = load_from_flag(build_warp(cfg, PF_WARP_INPUT), cfg, flag, "warp", ("pb_gen",),
                                 skip_prefixes=STUDENT_NEW_PARTS)
        models["warp"] = student.to(device)
        return models

    def param_groups(self, models, cfg, epoch):
        if epoch < cfg.niter:
            params = named_parameters_matching(models["warp"], STUDENT_NEW_PARTS)
            return [{"name": "warp_new_parts", "params": params, "lr": cfg.lr}]
        return [{"name": "warp", "params": list(models["warp"].parameters()), "lr": cfg.lr}]

    def losses(self, models, batch, cfg, step, want_images=False):
        inputs = TryOnInputs.from_batch(batch)
        tutor, teacher, student, terms, gate = teacher_and_student_warps(models, inputs, self.vgg)
        images = {"person": inputs.image, "tutor": tutor.image, "garment": inputs.garment,
                  "teacher_warped": teacher.warped, "warped_garment": student.warped,
                  "warped_edge": student.levels[-1].warped_edge}
        result = StepResult.from_terms(terms, images)
        result.terms["teacher_better_fraction"] = gate.mean().detach()
        return result


if __name__ == "__main__":
    main(ParserFreeWarp())
