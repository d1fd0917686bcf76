"""Data side of PF-AFN: VITON-layout datasets, readers of what outside tools produce (parsing
schemes, keypoint formats, DensePose files), batch -> model inputs, and a synthetic dataset
generator."""

from data.inputs import TryOnInputs
from data.viton import DatasetError, VitonTestDataset, VitonTrainDataset
from data.densepose import read_densepose_file
from data.labels import LABEL_SCHEMES, convert_labels, label_table, read_label_map
from data.pose import POSE_FORMATS, read_keypoints_file

__all__ = ["DatasetError", "LABEL_SCHEMES", "POSE_FORMATS", "TryOnInputs", "VitonTestDataset",
           "VitonTrainDataset", "convert_labels", "label_table", "read_densepose_file",
           "read_keypoints_file", "read_label_map"]
