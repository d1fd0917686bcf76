"""Data side of PF-AFN: VITON-layout datasets, OpenPose keypoints, batch -> model inputs,
and a synthetic dataset generator."""

from data.inputs import TryOnInputs
from data.viton import DatasetError, VitonTestDataset, VitonTrainDataset

__all__ = ["DatasetError", "TryOnInputs", "VitonTestDataset", "VitonTrainDataset"]
