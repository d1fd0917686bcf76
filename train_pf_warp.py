"""Stage 3: the parser-free warping module (student), distilled from the teacher.

The frozen stage-2 teacher dresses each person in another garment c' (the tutor image, which
needs the parser). The student AFWM(3) sees only that tutor image and the real garment c and is
supervised by the real photo: the warp loss against the person's garment region, plus feature
and flow distillation from the teacher run on (parser inputs, c), gated per sample to where the
teacher warps better, counted per ``--kd_group_size`` samples (4, as the release's per-GPU
batch). The student starts from the teacher's warp except its condition encoder, condition
pyramid and refinement heads (new input channels); during "the first niter epochs" only those
are optimised, then all of it with a fresh Adam. That phase is the release's ``niter - 1``
epochs (it tests ``epoch < niter`` on 1-based epochs), and the rate decays as the release's.

    python train_pf_warp.py --dataroot VITON_traindata --name pf_warp \\
        --pb_checkpoint checkpoints/pb_gen/final.pth
"""

from models import PF_WARP_INPUT
from models.registry import unwrap
from utils.training.earlier_stages import check_earlier_stages, teacher_source
from utils.training.engine import main
from utils.training.parts import (
    batch_inputs,
    build_warp,
    flow_picture,
    flow_scalars,
    perceptual_loss,
)
from utils.training.schedule import in_first_phase
from utils.training.stage import Stage, StepResult
from utils.training.students import (
    add_teacher_arguments,
    check_kd_group,
    distillation_adapter,
    load_from_flag,
    named_parameters_matching,
    parser_based_teacher,
    same_architecture,
    teacher_and_student_warps,
)

# Parameters that do not carry over from the parser-based warp (their inputs differ).
STUDENT_NEW_PARTS = ("cond_", "aflow_net.netRefine")


class ParserFreeWarp(Stage):
    name = "pf_warp"
    trained = ("warp",)
    builds = ("warp",)
    defaults = {"lr": 3e-5, "niter": 100, "niter_decay": 100}
    validation_kind = "warp"
    validation_needs_parser = True     # the worn garment region it is scored against

    def add_arguments(self, parser):
        add_teacher_arguments(parser)

    def build_models(self, cfg, device):
        check_kd_group(cfg)
        check_earlier_stages(cfg, "teacher")
        vgg = perceptual_loss(cfg, device)
        models = {**parser_based_teacher(cfg, device), "vgg": vgg}
        student = build_warp(cfg, PF_WARP_INPUT)
        if same_architecture(student, models["pb_warp"]):
            flag, _ = teacher_source(cfg, "warp")
            load_from_flag(student, cfg, flag, "warp", ("pb_gen",),
                           skip_prefixes=STUDENT_NEW_PARTS)
        models["warp"] = student.to(device)
        adapter = distillation_adapter(models["pb_warp"], student)
        if adapter is not None:
            models["adapter"] = adapter.to(device)
        return models

    def trained_models(self, models):
        return self.trained + (("adapter",) if "adapter" in models else ())

    def param_groups(self, models, cfg, epoch):
        adapter = ([{"name": "adapter", "params": list(models["adapter"].parameters()),
                     "lr": cfg.lr}] if "adapter" in models else [])
        # A student that starts from the teacher first trains only its new parts; one of
        # another architecture starts from random weights and trains everything at once.
        if (same_architecture(models["warp"], models["pb_warp"])
                and in_first_phase(epoch, cfg.niter)):
            params = named_parameters_matching(models["warp"], STUDENT_NEW_PARTS)
            return [{"name": "warp_new_parts", "params": params, "lr": cfg.lr}] + adapter
        return [{"name": "warp", "params": list(models["warp"].parameters()),
                 "lr": cfg.lr}] + adapter

    def validation_outputs(self, models, batch, cfg):
        # Parser-free, as at test time: the real photo, not a tutor image.
        inputs = batch_inputs(batch, cfg)
        warp = models["warp"](inputs.image, inputs.garment)
        return warp.warped, inputs.person_clothes

    def losses(self, models, batch, context):
        align_corners = unwrap(models["warp"]).arch["align_corners"]
        cfg = context.cfg
        inputs = batch_inputs(batch, cfg)
        out = teacher_and_student_warps(models, inputs, models["vgg"], cfg.kd_group_size)
        images = {}
        if context.want_images:
            images = {"person": inputs.image, "tutor": out.tutor.image,
                      "garment": inputs.garment, "teacher_warped": out.teacher.warped,
                      "warped_garment": out.student.warped,
                      "flow": flow_picture(out.student, align_corners),
                      "warped_edge": out.student.levels[-1].warped_edge}
        scalars = {"distill/teacher_better_fraction": out.gate.mean(),
                   **flow_scalars(out.student, align_corners)}
        return StepResult.from_terms(out.terms, images, scalars)


if __name__ == "__main__":
    main(ParserFreeWarp())
