"""Photos with an embedded ICC colour profile are read in sRGB (data.files.decode_rgb): a
profile of another RGB space is converted from, sRGB's own changes nothing, a damaged one is
ignored, as a viewer ignores it."""

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageCms

from data.files import read_rgb
from utils.metrics.images import load_image

# sRGB's primaries adapted to D50, the ICC connection space's white (X, Y, Z).
SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), \
    (0.1431, 0.0606, 0.7141)
D50 = (0.9642, 1.0, 0.8249)


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def matrix_profile(red, green, blue, gamma: float = 2.2, name: str = "test") -> bytes:
    """A version-2 RGB display profile: three colorants and one gamma curve per channel."""
    xyz = lambda c: b"XYZ " + bytes(4) + b"".join(map(_s15, c))    # noqa: E731
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)) + bytes(2)
    text = name.encode() + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 3 + 67)
    tags = [(b"desc", desc), (b"wtpt", xyz(D50)), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text" + bytes(4) + b"none\0")]
    table, data = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = 128 + 4 + len(table) + len(data)
    header = (struct.pack(">I", size) + b"none" + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB " + b"XYZ " + bytes(12) + b"acsp" + bytes(24) + bytes(4)
              + b"".join(map(_s15, D50)) + bytes(4) + bytes(16) + bytes(28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


@pytest.fixture
def red_photo():
    photo = np.zeros((24, 16, 3), np.uint8)
    photo[..., 0] = 250
    photo[8:16, 4:12] = (40, 160, 90)
    return photo


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_a_profile_of_another_space_is_converted_to_srgb(tmp_path, red_photo, suffix):
    """Red and blue swapped in the profile: the stored red is shown, and now read, as blue."""
    path = tmp_path / f"swapped{suffix}"
    Image.fromarray(red_photo).save(path, icc_profile=matrix_profile(SRGB_BLUE, SRGB_GREEN,
                                                                     SRGB_RED, name="swapped"))
    read = read_rgb(str(path)).astype(int)
    assert read[0, 0, 2] > 230 and read[0, 0, 0] < 20
    # As a colour-managed viewer shows the file.
    with Image.open(path) as image:
        source = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
        shown = np.asarray(ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"),
                                                     outputMode="RGB")).astype(int)
    assert np.abs(read - shown).max() <= 1
    # Scoring reads photos as the model's reader does.
    assert np.array_equal(load_image(path).permute(1, 2, 0).numpy(), read)


def test_srgbs_own_profile_and_no_profile_read_alike(tmp_path, red_photo):
    plain, tagged = tmp_path / "plain.png", tmp_path / "tagged.png"
    Image.fromarray(red_photo).save(plain)
    Image.fromarray(red_photo).save(
        tagged, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    assert np.array_equal(read_rgb(str(tagged)), read_rgb(str(plain)))
    assert np.array_equal(read_rgb(str(plain)), red_photo)


def test_a_damaged_profile_is_ignored_and_a_name_decides_nothing(tmp_path, red_photo):
    """A viewer ignores a profile it cannot read, and so does the reader (it had refused the
    photo); whether a profile is sRGB is told by what it does to colours, not by its name."""
    damaged = tmp_path / "damaged.jpg"
    Image.fromarray(red_photo).save(damaged, icc_profile=b"not a colour profile at all" * 8)
    plain = tmp_path / "plain.jpg"
    Image.fromarray(red_photo).save(plain)
    assert np.array_equal(read_rgb(str(damaged)), read_rgb(str(plain)))
    assert np.array_equal(load_image(damaged), load_image(plain))
    # A linear curve under sRGB's primaries is another space, whatever its name says.
    linear = tmp_path / "linear.png"
    Image.fromarray(red_photo).save(linear, icc_profile=matrix_profile(
        SRGB_RED, SRGB_GREEN, SRGB_BLUE, gamma=1.0, name="Linear sRGB"))
    assert read_rgb(str(linear))[8, 4, 0] > 100       # 40 linear reads as about 110 in sRGB
