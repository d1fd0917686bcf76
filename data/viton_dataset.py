"""``VitonTrainDataset``: the training set of one ``VITON_traindata`` folder, built from its path
and the encoding of its files, for scripts and tests that read a folder without the command
line's ``DataOptions`` (the stage scripts use ``data.datasets.make_train_dataset``)."""

from typing import Optional, Sequence

from data import viton
from data.datasets import GarmentMasks, TryOnTrainDataset
from data.densepose import IUV_CHANNELS
from data.labels import LABEL_SCHEMES, NECK_CHOICES
from data.pose import POSE_FORMATS
from data.samples import DataFormats


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(choices)}")


class VitonTrainDataset(TryOnTrainDataset):
    """The training set of a ``VITON_traindata`` folder (items: module docstring).

    Args:
        root: the folder holding train_img/, train_color/, ...
        height, width: size every sample is returned at (other sizes are resized).
        pairs_file: ``person.jpg cloth.jpg`` lines; a name inside ``root`` or an absolute path.
            Default: ``train_pairs.txt`` in ``root`` when present, else every photo of train_img.
        seed: base of the unpaired-garment draw.
        label_scheme, neck, pose_format, iuv_channel: how train_label/, train_pose/ and
            train_densepose/ are encoded (``data.samples.DataFormats``).
        category: the garment category of every sample.
    """

    folders = viton.TRAIN_FOLDERS

    def __init__(self, root: str, height: int = 256, width: int = 192,
                 pairs_file: Optional[str] = None, seed: int = 0, label_scheme: str = "viton",
                 neck: str = "skin", pose_format: str = "auto", iuv_channel: str = "b",
                 category: str = "upper_body", masks: Optional[GarmentMasks] = None):
        for name, value, choices in (("label_scheme", label_scheme, LABEL_SCHEMES),
                                     ("neck", neck, NECK_CHOICES),
                                     ("pose_format", pose_format, POSE_FORMATS),
                                     ("iuv_channel", iuv_channel, IUV_CHANNELS)):
            _check_choice(name, value, choices)
        self.root = root
        self.pairs_file = viton.train_pairs_file(root, pairs_file)
        formats = DataFormats(label_scheme, neck, pose_format, iuv_channel)
        super().__init__(viton.train_samples(root, (category,), pairs_file=pairs_file), height,
                         width, formats, masks, seed)
