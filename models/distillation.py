"""The adjustable knowledge distillation of PF-AFN's parser-free student (stages 3 and 4, spec
§3): a per-sample gate that trusts the teacher only where its warp is the better one, and the
gated feature and flow terms between the teacher's and the student's warp levels.
"""

from typing import Optional, Sequence

import torch
import torch.nn as nn

from models.afwm import WarpLevel


def distillation_gate(teacher_warped: torch.Tensor, student_warped: torch.Tensor,
                      person_clothes: torch.Tensor) -> torch.Tensor:
    """(B,) float gate: 1 where the teacher's warped garment is closer (mean L1) to the
    person's garment than the student's, else 0. No gradient flows through it."""
    teacher_error = (teacher_warped.detach() - person_clothes).abs().flatten(1).mean(1)
    student_error = (student_warped.detach() - person_clothes).abs().flatten(1).mean(1)
    return (teacher_error < student_error).float()


def distillation_weights(gate: torch.Tensor, group_size: int = 4) -> torch.Tensor:
    """(B,) per-sample weights ``g_b / (n_k K)`` of the gated distillation sums.

    The batch is cut into consecutive groups of ``group_size`` samples (the last may be
    smaller); group k counts its gated samples ``n_k = max(1, sum of g_b in k)`` and the K
    groups' terms are averaged. The release counted per GPU batch of 4 and DDP averaged the
    8 GPUs, so groups of 4 give its loss and gradients on any layout (1 x 32, 2 x 16, 8 x 4).
    ``group_size`` 0 (or >= B) is one group: the count over the whole batch."""
    batch = gate.shape[0]
    size = batch if group_size <= 0 else min(group_size, batch)
    group = torch.arange(batch, device=gate.device) // size
    num_groups = max(1, -(-batch // size))
    counts = torch.zeros(num_groups, device=gate.device, dtype=gate.dtype)
    counts = counts.index_add(0, group, gate).clamp(min=1.0)
    return gate / (counts[group] * num_groups)


class FeatureAdapter(nn.Module):
    """1x1 convolutions, one per pyramid level, from the student's feature width to the
    teacher's: what lets a narrow student (a mobile pyramid of 64 channels) be distilled from a
    teacher of 256. Trained with the student during stages 3 and 4, never used at test time.
    (DM-VTON needs none: its student's pyramids are as wide as its teacher's.)"""

    def __init__(self, student_dim: int, teacher_dim: int, num_levels: int = 5):
        super().__init__()
        self.levels = nn.ModuleList(nn.Conv2d(student_dim, teacher_dim, 1)
                                    for _ in range(num_levels))

    def forward(self, level: int, feature: torch.Tensor) -> torch.Tensor:
        """The student feature of ``level`` (coarse to fine) at the teacher's width."""
        return self.levels[level](feature)


def distillation_loss(teacher_levels: Sequence[WarpLevel], student_levels: Sequence[WarpLevel],
                      gate: torch.Tensor, first_flow_level: int = 2,
                      group_size: int = 4,
                      adapter: Optional[FeatureAdapter] = None) -> dict[str, torch.Tensor]:
    """Adjustable knowledge distillation (spec §3), gated per sample by ``gate`` (B,).

    Feature term per level i: ``(L-i) * 0.04 * sum_b g_b ||c_T - c_S||^2 / (C h w n)``;
    flow term for i >= 2: ``(i+1) * sum_b g_b sum_pixels ||f_T - f_S||_2 / (h w n)``, with
    ``n = max(1, sum_b g_b)`` counted per group of ``group_size`` samples and the groups'
    terms averaged (``distillation_weights``). (C is the teacher's pyramid width, 256 in the
    release.) ``adapter`` maps student features to the teacher's width when they differ.
    Returns {'distill_feature', 'distill_flow'}.
    """
    num_levels = len(student_levels)
    weights = distillation_weights(gate, group_size)
    feature_term = gate.new_zeros(())
    flow_term = gate.new_zeros(())
    for i, (teacher, student) in enumerate(zip(teacher_levels, student_levels)):
        student_feature = (student.cond_feature if adapter is None
                           else adapter(i, student.cond_feature))
        channels, height, width = student_feature.shape[1:]
        if teacher.cond_feature.shape != student_feature.shape:
            raise ValueError(f"distillation level {i}: teacher features "
                             f"{tuple(teacher.cond_feature.shape)}, student features "
                             f"{tuple(student_feature.shape)}: pass an adapter")
        squared = (teacher.cond_feature.detach() - student_feature).pow(2)
        per_sample = squared.flatten(1).sum(1)
        feature_term = feature_term + (num_levels - i) * 0.04 * (weights * per_sample).sum() / (
            channels * height * width)
        if i >= first_flow_level:
            height, width = student.flow.shape[-2:]
            distance = torch.linalg.vector_norm(teacher.flow.detach() - student.flow, dim=1)
            flow_term = flow_term + (i + 1) * (weights * distance.flatten(1).sum(1)).sum() / (
                height * width)
    return {"distill_feature": feature_term, "distill_flow": flow_term}
