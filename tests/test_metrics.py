"""Tests for utils/metrics/ and utils/weights.py: closed forms, independent references, the
weight-file rules, and the FID network against pytorch-fid's own."""

import importlib.util
import json
import os

import cv2
import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from scipy import ndimage

from data.files import DatasetError, read_pairs, read_rgb
from utils.metrics import (
    FID_WEIGHTS_FILE,
    LPIPS_BACKBONE_FILES,
    MetricsError,
    MissingWeightsError,
    WeightsFileError,
    build_fid_inception,
    build_lpips,
    feature_statistics,
    fid_from_features,
    frechet_distance,
    lpips_distance,
    resolve_weights_file,
    ssim,
)
from utils.metrics.fid import _random_fid_inception_state
from utils.metrics.folders import (
    _note_random_weights,
    evaluate_folders,
    format_table,
    result_file_name,
)
from utils.metrics.images import image_size

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    """One intra-op thread: on a small, shared CPU a second thread makes the Inception forward
    spin-wait, ten times slower than one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def empty_torch_home(tmp_path, monkeypatch):
    """An empty hub cache, so that every test sees the same weights (none) whatever this machine
    has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home"


# ---------------------------------------------------------------------------------------------
# Frechet distance


def analytic_frechet_commuting(mu1, variances1, mu2, variances2):
    """Both covariances diagonal in one basis: (S1 S2)^(1/2) has eigenvalues sqrt(v1_i v2_i)."""
    return float(((mu1 - mu2) ** 2).sum()
                 + (variances1 + variances2 - 2 * np.sqrt(variances1 * variances2)).sum())


def test_frechet_distance_diagonal_covariances():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    variances1, variances2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    # By hand: |mu1-mu2|^2 = 1 + 0 + 6.25; traces: (1+9-6) + (4+1-4) + (0.25+0.25-0.5) = 4 + 1 + 0.
    expected = 7.25 + 5.0
    assert analytic_frechet_commuting(mu1, variances1, mu2, variances2) == pytest.approx(expected)
    assert frechet_distance(mu1, np.diag(variances1), mu2, np.diag(variances2)) == pytest.approx(
        expected, rel=1e-9)


def test_frechet_distance_commuting_rotated_covariances():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    variances1, variances2 = np.array([0.5, 1.0, 2.0, 3.0]), np.array([2.0, 0.1, 2.0, 5.0])
    sigma1 = rotation @ np.diag(variances1) @ rotation.T
    sigma2 = rotation @ np.diag(variances2) @ rotation.T
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    expected = analytic_frechet_commuting(mu1, variances1, mu2, variances2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_non_commuting_2x2():
    # For a 2x2 matrix M with positive eigenvalues, Tr(M^(1/2)) = sqrt(Tr M + 2 sqrt(det M));
    # S1 S2 has positive eigenvalues (similar to S1^(1/2) S2 S1^(1/2)) and det = det S1 det S2.
    sigma1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    sigma2 = np.array([[1.0, -0.3], [-0.3, 0.5]])
    assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1)
    product = sigma1 @ sigma2
    trace_sqrt = np.sqrt(np.trace(product) + 2 * np.sqrt(np.linalg.det(product)))
    mu1, mu2 = np.array([0.3, -1.0]), np.array([0.0, 0.5])
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("count1,count2,dim", [(10, 14, 32), (60, 50, 16)])
def test_fid_from_features_matches_pytorch_fid_statistics(count1, count2, dim):
    # Covers both N < D (rank-deficient covariances, where sqrtm needs care) and N > D.
    rng = np.random.default_rng(1)
    features1 = np.abs(rng.standard_normal((count1, dim)))
    features2 = np.abs(rng.standard_normal((count2, dim))) * 1.3 + 0.1
    reference = frechet_distance(*feature_statistics(features1), *feature_statistics(features2))
    assert fid_from_features(features1, features2) == pytest.approx(reference, rel=1e-6)
    assert fid_from_features(features1, features1) == pytest.approx(0.0, abs=1e-9)


def test_fid_from_sampled_gaussians_converges_to_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = np.array([0.0, 1.0, 0.0]), np.array([0.5, 0.0, 0.0])
    variances1, variances2 = np.array([1.0, 2.0, 0.5]), np.array([0.25, 2.0, 2.0])
    # 1.25 + 0.25 + 0 + 0.5 = 2.0
    expected = analytic_frechet_commuting(mu1, variances1, mu2, variances2)
    assert expected == pytest.approx(2.0)
    # The estimate's standard error shrinks as 1/sqrt(n): about 0.3 at n = 200, 0.01 at n = 200,000.
    tolerances = {200: 1.0, 200_000: 0.03}
    for count, tolerance in tolerances.items():
        samples1 = mu1 + rng.standard_normal((count, 3)) * np.sqrt(variances1)
        samples2 = mu2 + rng.standard_normal((count, 3)) * np.sqrt(variances2)
        assert fid_from_features(samples1, samples2) == pytest.approx(expected, abs=tolerance)


def test_fid_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2 samples"):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


# ---------------------------------------------------------------------------------------------
# SSIM


def reference_ssim(image1, image2):
    """Wang et al.'s SSIM per image written with scipy, as scikit-image does it (Gaussian filter,
    sigma 1.5 truncated at 3.5 sigma = 11 taps, borders cropped by 5). Images (3, H, W) in
    [0, 1]."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []

    def blur(a):
        return ndimage.gaussian_filter(a, sigma=1.5, truncate=3.5)[5:-5, 5:-5]

    for x, y in zip(image1.astype(np.float64), image2.astype(np.float64)):
        mu_x, mu_y = blur(x), blur(y)
        var_x, var_y = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2
        cov = blur(x * y) - mu_x * mu_y
        ssim_map = (((2 * mu_x * mu_y + c1) * (2 * cov + c2))
                    / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
        values.append(ssim_map.mean())
    return float(np.mean(values))


def test_ssim_identical_images_is_one():
    images = torch.rand(2, 3, 24, 20) * 2 - 1
    assert torch.allclose(ssim(images, images), torch.ones(2, dtype=torch.float64), atol=1e-12)


def test_ssim_constant_images_closed_form():
    # Constant images a and b: every variance is 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    a, b = 0.25, 0.75  # in [0, 1]; as project images these are -0.5 and 0.5
    first = torch.full((1, 3, 16, 16), 2 * a - 1)
    second = torch.full((1, 3, 16, 16), 2 * b - 1)
    c1 = 0.01 ** 2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(first, second).item() == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_independent_reference_and_uint8_input():
    generator = torch.Generator().manual_seed(3)
    target = (torch.rand(2, 3, 32, 24, generator=generator) * 255).to(torch.uint8)
    noise = torch.randn(2, 3, 32, 24, generator=generator) * 25
    pred = (target.float() + noise + 10).clamp(0, 255).to(torch.uint8)
    values = ssim(pred, target)
    for index in range(2):
        expected = reference_ssim(pred[index].numpy() / 255.0, target[index].numpy() / 255.0)
        assert values[index].item() == pytest.approx(expected, abs=1e-6)
    assert 0.0 < values.min() < values.max() < 1.0
    # The same images in the project's [-1, 1] convention give the same scores.
    as_float = ssim(pred.float() / 127.5 - 1, target.float() / 127.5 - 1)
    assert torch.allclose(as_float, values, atol=1e-6)


def test_ssim_matches_scikit_image_if_installed():
    skimage_metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(4)
    target = rng.random((3, 30, 26))
    pred = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1)
    expected = skimage_metrics.structural_similarity(pred, target, channel_axis=0, data_range=1.0,
                                                     gaussian_weights=True, sigma=1.5,
                                                     use_sample_covariance=False)
    value = ssim(torch.from_numpy(pred * 2 - 1), torch.from_numpy(target * 2 - 1)).item()
    assert value == pytest.approx(expected, abs=1e-6)


def test_ssim_rejects_small_or_out_of_range_images():
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 10, 20), torch.zeros(1, 3, 10, 20))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        ssim(torch.full((1, 3, 16, 16), 255.0), torch.zeros(1, 3, 16, 16))


# ---------------------------------------------------------------------------------------------
# Weight files


def test_missing_fid_weights_error_names_file_folder_and_flag(empty_torch_home):
    with pytest.raises(MissingWeightsError) as caught:
        build_fid_inception()
    message = str(caught.value)
    assert FID_WEIGHTS_FILE in message and "--fid_weights" in message
    assert str(empty_torch_home / "hub" / "checkpoints") in message


def test_missing_lpips_weights_error_names_file_and_flag():
    for net, file_name in LPIPS_BACKBONE_FILES.items():
        with pytest.raises(MissingWeightsError) as caught:
            build_lpips(net)
        assert file_name in str(caught.value) and "--lpips_backbone_weights" in str(caught.value)


def test_named_weights_file_must_exist_even_with_random_opt_in(tmp_path):
    with pytest.raises(MissingWeightsError, match="--fid_weights"):
        build_fid_inception(weights=tmp_path / "nowhere.pth", allow_random_weights=True)


def test_weights_found_in_hub_cache(empty_torch_home):
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    (cache / FID_WEIGHTS_FILE).write_bytes(b"placeholder")
    found = resolve_weights_file(None, FID_WEIGHTS_FILE, "--fid_weights", "FID",
                                 allow_random_weights=False)
    assert found == cache / FID_WEIGHTS_FILE


def test_lpips_trunk_loaded_from_named_file_and_checked(tmp_path):
    import torchvision

    torch.manual_seed(5)
    alexnet_state = torchvision.models.alexnet(weights=None).state_dict()
    path = tmp_path / "my_alexnet.pth"
    torch.save(alexnet_state, path)
    model = build_lpips("alex", backbone_weights=path, check_hash=False)
    assert model.pretrained and model.weights_source == str(path)
    # lpips keeps torchvision's layer numbers inside its slices.
    assert torch.equal(getattr(model.net.slice2, "3").weight, alexnet_state["features.3.weight"])
    assert torch.equal(getattr(model.net.slice5, "10").bias, alexnet_state["features.10.bias"])
    # The linear layers are the package's calibrated, non-negative weights.
    linear_weight = model.lin0.model[1].weight
    assert float(linear_weight.min()) >= 0.0 and float(linear_weight.sum()) > 0.0
    # A file that is not the published one is refused by its hash...
    with pytest.raises(WeightsFileError, match="sha256"):
        build_lpips("alex", backbone_weights=path)
    # A NaN in the weights: a numpy traceback (SVD did not converge) after every try-on.
    nan = alexnet_state["features.3.bias"] * float("nan")
    torch.save({**alexnet_state, "features.3.bias": nan}, path)
    with pytest.raises(WeightsFileError, match="weights holding NaN or infinity .features.3.bias"):
        build_lpips("alex", backbone_weights=path, check_hash=False)
    # ...and a file with other keys by name.
    torch.save({"features.0.weight": torch.zeros(1)}, path)
    with pytest.raises(WeightsFileError, match="features.0.weight"):
        build_lpips("alex", backbone_weights=path, check_hash=False)
    # A file that is no checkpoint at all: one line, not torch.load's advice to load it unsafely.
    path.write_text("# not weights")
    with pytest.raises(WeightsFileError, match=r"my_alexnet.pth: not a PyTorch checkpoint") \
            as caught:
        build_lpips("alex", backbone_weights=path, check_hash=False)
    assert "\n" not in str(caught.value) and "weights_only" not in str(caught.value)


def test_fid_inception_loaded_from_named_file(tmp_path, capsys):
    state = _random_fid_inception_state()
    path = tmp_path / "inception.pth"
    torch.save(state, path)
    # pytorch-fid never checks its file's hash, so a mismatch is a warning here, not an error:
    # one line on stderr (it was also a Python warning that printed its source line).
    model = build_fid_inception(weights=path)
    err = capsys.readouterr().err
    assert err.startswith(f"WARNING: {path}: sha256") and err.count("\n") == 1
    assert model.pretrained and model.weights_source == str(path)
    assert torch.equal(model.blocks[0][0].conv.weight, state["Conv2d_1a_3x3.conv.weight"])
    # Its scores were marked comparable to published ones, the mismatch only on stderr.
    scores = {"warnings": []}
    _note_random_weights(scores, None, model)
    assert scores["comparable_to_published"] is False and scores["random_weights"] == []
    assert scores["warnings"] == [f"fid: {path}: sha256 {err.split('sha256 ')[1][:8]}... does "
                                  f"not match pt_inception-2015-12-05-6726825d.pth (expected "
                                  f"prefix 6726825d); this is not the published file: its scores "
                                  f"are NOT comparable to published numbers"]
    # Other keys: one line naming how many and one of each (it listed all 566 missing keys).
    torch.save({"fc.weight": torch.zeros(3), "a": torch.zeros(1)}, path)
    with pytest.raises(WeightsFileError, match="not the FID Inception weights") as caught:
        build_fid_inception(weights=path, check_hash=False)
    assert str(caught.value).endswith("565 missing key(s), e.g. Conv2d_1a_3x3.bn.bias; "
                                      "1 unexpected key(s), e.g. a; 1 misshapen key(s), e.g. "
                                      "fc.weight")
    # Right keys, one wrong shape: refused too, naming the file and the key.
    state["Conv2d_1a_3x3.conv.weight"] = torch.zeros(1, 3, 3, 3)
    torch.save(state, path)
    with pytest.raises(WeightsFileError, match="Conv2d_1a_3x3.conv.weight") as caught:
        build_fid_inception(weights=path, check_hash=False)
    assert str(path) in str(caught.value)


def test_fid_inception_features_equal_pytorch_fid(monkeypatch):
    # pytorch-fid's own InceptionV3([3]), its download replaced by the same random state: our
    # network, built from the library's blocks without the download, must give its features.
    from pytorch_fid import inception as fid_inception

    state = _random_fid_inception_state()
    monkeypatch.setattr(fid_inception, "load_state_dict_from_url",
                        lambda url, *args, **kwargs: state)
    pool3 = fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]
    library = fid_inception.InceptionV3([pool3]).eval()
    ours = build_fid_inception(allow_random_weights=True)
    assert list(ours.state_dict()) == list(library.state_dict())
    generator = torch.Generator().manual_seed(8)
    # Not 299x299, so that the resize is compared too.
    images = torch.rand(2, 3, 64, 48, generator=generator)
    with torch.no_grad():
        expected = library(images)
        found = ours(images)
    assert len(found) == len(expected) == 1 and found[0].shape == (2, 2048, 1, 1)
    # features far from zero, so equality means something
    assert float(expected[0].abs().mean()) > 1e-2
    torch.testing.assert_close(found[0], expected[0], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# LPIPS


def test_lpips_zero_for_identical_and_growing_with_noise(capsys):
    model = build_lpips("alex", allow_random_weights=True)
    assert not model.pretrained
    assert "RANDOM WEIGHTS" in capsys.readouterr().err
    generator = torch.Generator().manual_seed(6)
    clean = torch.rand(2, 3, 64, 48, generator=generator) * 1.6 - 0.8
    noise = torch.randn(2, 3, 64, 48, generator=generator)
    assert torch.allclose(lpips_distance(model, clean, clean), torch.zeros(2, dtype=torch.float64),
                          atol=1e-7)
    distances = [lpips_distance(model, (clean + scale * noise).clamp(-1, 1), clean)
                 for scale in (0.05, 0.2, 0.6)]
    for smaller, larger in zip(distances, distances[1:]):
        assert torch.all(smaller > 0) and torch.all(larger > smaller)


# ---------------------------------------------------------------------------------------------
# Folders and the command line


def make_test_folders(root, people, noisy_people=()):
    """Person photos 128x96 in test_img/, try-ons 64x48 equal to the photos resized by PIL bilinear
    (except ``noisy_people``), and a pairs file."""
    rng = np.random.default_rng(7)
    (root / "test_img").mkdir(parents=True)
    (root / "results").mkdir()
    lines = []
    for person in people:
        photo = Image.fromarray(rng.integers(0, 256, (128, 96, 3), dtype=np.uint8))
        # Smooth the noise so that the photos look more like images than like static.
        photo.filter(ImageFilter.GaussianBlur(2)).save(root / "test_img" / person)
        # decoded, as the metrics will read it
        with Image.open(root / "test_img" / person) as saved:
            result = np.asarray(saved.convert("RGB").resize((48, 64), Image.BILINEAR)).copy()
        if person in noisy_people:
            noisy = result.astype(int) + rng.integers(-60, 61, result.shape)
            result = np.clip(noisy, 0, 255).astype(np.uint8)
        cloth = person.replace("_0", "_1")
        Image.fromarray(result).save(root / "results" / result_file_name(person, cloth))
        lines.append(f"{person} {cloth}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")


def test_evaluate_folders_identical_images(tmp_path):
    # Two pairs, the fewest FID accepts: the Inception forward is the slow part of this file.
    people = ["000001_0.png", "000002_0.png"]
    make_test_folders(tmp_path, people)
    scores = evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                              batch_size=1, allow_random_weights=True)
    assert scores["num_pairs"] == 2 and scores["image_size"] == [64, 48]
    assert scores["num_resized_references"] == 2
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-9)
    assert scores["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert scores["fid"] == pytest.approx(0.0, abs=1e-6)
    assert scores["fid_num_results"] == 2 and scores["fid_num_references"] == 2
    assert scores["random_weights"] == ["lpips", "fid"]
    assert scores["comparable_to_published"] is False
    assert any("NOT comparable" in warning for warning in scores["warnings"])
    assert [entry["result"] for entry in scores["per_pair"]] == [
        "000001_0__000001_1.png", "000002_0__000002_1.png"]
    json.dumps(scores)


def test_evaluate_reads_images_up_to_max_megapixels(tmp_path, capsys):
    # evaluate.py took --max_megapixels and read every image at the default limit.
    from scripts import evaluate
    make_test_folders(tmp_path, ["000001_0.png"])
    argv = ["--results_dir", str(tmp_path / "results"), "--dataroot", str(tmp_path),
            "--pairs", str(tmp_path / "pairs.txt"), "--metrics", "ssim"]
    with pytest.raises(SystemExit):
        evaluate.main(argv + ["--max_megapixels", "0.001"])
    assert "(0.00307 megapixels) is more than the 0.001 megapixels" in capsys.readouterr().err
    with pytest.raises(SystemExit):   # the photos (128x96) are read under the limit too
        evaluate.main(argv + ["--max_megapixels", "0.01"])
    assert "000001_0.png: 128x96 image" in capsys.readouterr().err
    assert evaluate.main(argv + ["--max_megapixels", "0.02"])["ssim"] == pytest.approx(1.0)


def test_evaluate_folders_ssim_per_pair_and_errors(tmp_path):
    people = ["000001_0.jpg", "000002_0.jpg"]
    make_test_folders(tmp_path, people, noisy_people={"000002_0.jpg"})
    scores = evaluate_folders(tmp_path / "results", tmp_path / "test_img",
                              read_pairs(tmp_path / "pairs.txt"), metrics=("ssim",))
    first, second = (entry["ssim"] for entry in scores["per_pair"])
    # The try-on was made from the decoded JPEG photo, so the clean pair is exactly 1.
    assert first == pytest.approx(1.0, abs=1e-9) and second < 0.9
    assert scores["ssim"] == pytest.approx((first + second) / 2)
    assert scores["comparable_to_published"] is True
    assert "lpips" not in scores and "fid" not in scores

    (tmp_path / "results" / "000002_0__000002_1.png").unlink()
    with pytest.raises(MetricsError, match="000002_0__000002_1.png"):
        evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                         metrics=("ssim",))
    (tmp_path / "bad_pairs.txt").write_text("000001_0.jpg\n")
    with pytest.raises(DatasetError, match="bad_pairs.txt, line 1"):
        read_pairs(tmp_path / "bad_pairs.txt")


def test_command_line_writes_json(tmp_path, capsys, user_error, monkeypatch):
    make_test_folders(tmp_path, ["000001_0.png", "000002_0.png"], noisy_people={"000002_0.png"})
    spec = importlib.util.spec_from_file_location(
        "evaluate_script", os.path.join(REPO_ROOT, "scripts", "evaluate.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "scores.json"
    script.main(["--results_dir", str(tmp_path / "results"), "--dataroot", str(tmp_path),
                 "--pairs", str(tmp_path / "pairs.txt"), "--metrics", "ssim", "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["num_pairs"] == 2 and 0.0 < written["ssim"] < 1.0
    assert "ssim" in capsys.readouterr().out
    # A pairs file named from the current folder, as test.py and baselines.py take it.
    monkeypatch.chdir(tmp_path.parent)
    script.main(["--results_dir", str(tmp_path / "results"), "--dataroot", str(tmp_path),
                 "--pairs", f"{tmp_path.name}/pairs.txt", "--metrics", "ssim", "--out", str(out)])
    assert json.loads(out.read_text())["num_pairs"] == 2
    argv = ["--results_dir", str(tmp_path / "results"), "--dataroot", str(tmp_path),
            "--pairs", str(tmp_path / "pairs.txt"), "--metrics", "lpips"]
    assert "--lpips_backbone_weights" in user_error(lambda: script.main(argv))
    # A trunk for a score not asked was silently ignored.
    argv[-1:] = ["ssim", "--lpips_net", "vgg"]
    assert "--lpips_net: for the LPIPS score, not in --metrics" in user_error(
        lambda: script.main(argv))
    assert "--fid_weights: for the FID score, not in --metrics" in user_error(
        lambda: script.main(argv[:-2] + ["--fid_weights", "inception.pth"]))
    # --out wrote over the pairs file or a try-on it scored; a folder, a batch size of 0 and an
    # unknown device were tracebacks (the folder after all the scoring).
    argv[-2:] = []
    result = tmp_path / "results" / "000001_0__000001_1.png"
    before = result.read_bytes(), (tmp_path / "pairs.txt").read_bytes()
    for extra, message in ((["--out", str(tmp_path / "pairs.txt")], "give a .json file name"),
                           (["--out", str(result)], "give a .json file name"),
                           (["--out", str(tmp_path / "results")], "give a .json file name"),
                           (["--batch_size", "0"], "--batch_size 0: must be at least 1"),
                           (["--device", "foo"], "--device foo: not a device")):
        assert message in user_error(lambda extra=extra: script.main(argv + extra))
    assert (result.read_bytes(), (tmp_path / "pairs.txt").read_bytes()) == before
    # Any existing .json was replaced by the scores (a keypoints file of the data).
    keypoints = tmp_path / "test_pose" / "000001_0_keypoints.json"
    keypoints.parent.mkdir()
    keypoints.write_text("{}")
    assert f"--out {keypoints}: exists and is not a scores file this command wrote" in \
        user_error(lambda: script.main(argv + ["--out", str(keypoints)]))
    assert keypoints.read_text() == "{}"
    json_named = tmp_path / "results" / "000001_0__000001_1.json"
    json_named.mkdir()
    assert "is a folder" in user_error(lambda: script.main(argv + ["--out", str(json_named)]))
    # A write that fails (here a full disk) was a traceback after all the scoring, and an
    # earlier scores file there was cut short; scoring that fails left the folders made for
    # --out behind.
    import common.atomic
    earlier = out.read_bytes()

    def full_disk(path, write):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(common.atomic, "write_atomic", full_disk)
        failed = user_error(lambda: script.main(argv + ["--out", str(out)]))
    assert failed.strip() == f"error: --out: cannot write {out} (No space left on device)"
    assert out.read_bytes() == earlier
    (tmp_path / "results" / "000002_0__000002_1.png").rename(tmp_path / "aside.png")
    assert "missing" in user_error(lambda: script.main(argv + ["--out", str(out)]))
    assert "missing" in user_error(
        lambda: script.main(argv + ["--out", str(tmp_path / "new" / "a" / "s.json")]))
    assert out.read_bytes() == earlier and not (tmp_path / "new").exists()
    # Out of memory (batches of 16 at 1024x768 take about 5 GB): an allocator's traceback.
    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] . DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 5033164800 bytes.")

    with monkeypatch.context() as patch:
        patch.setattr(script, "evaluate_folders", no_memory)
        said = user_error(lambda: script.main(argv))
    assert said.startswith("error: out of memory running the scoring in batches of 16 (")
    assert said.strip().endswith("): lower --batch_size, or score on another --device")


def test_results_of_another_aspect_ratio_are_refused(tmp_path):
    # They were scored against photos squashed to their size, with only a warning.
    make_test_folders(tmp_path, ["000001_0.png", "000002_0.png"])
    for path in (tmp_path / "results").iterdir():
        Image.open(path).resize((64, 64)).save(path)
    with pytest.raises(MetricsError, match=r"000001_0.png is 128x96 and its try-on 64x64, "
                                           r"another aspect ratio"):
        evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                         metrics=("ssim",))


def test_photos_of_several_sizes_are_each_scored_at_their_try_on_size(tmp_path):
    # Try-ons written at each photo's size (test.py's default) were refused as "differ in size".
    people = ["000001_0.png", "000002_0.png", "000003_0.png"]
    make_test_folders(tmp_path, people, noisy_people=("000003_0.png",))
    result = tmp_path / "results" / result_file_name(people[0], "000001_1.png")
    Image.open(tmp_path / "test_img" / people[0]).save(result)          # 128x96, exact
    scores = evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                              metrics=("ssim", "fid"), batch_size=2, allow_random_weights=True)
    assert scores["image_size"] is None and scores["image_sizes"] == {"128x96": 1, "64x48": 2}
    assert [round(entry["ssim"], 6) for entry in scores["per_pair"]][:2] == [1.0, 1.0]
    assert scores["per_pair"][2]["ssim"] < 0.9 and scores["num_resized_references"] == 2
    assert scores["fid_num_results"] == scores["fid_num_references"] == 3
    assert "image size 128x96 (1), 64x48 (2)" in format_table(scores)


def test_photos_turned_by_their_exif_orientation_are_scored_as_shown(tmp_path):
    # A JPEG stored on its side with EXIF orientation 6 is read upright by OpenCV (training,
    # test.py); the scores read it as stored and refused its upright try-on.
    make_test_folders(tmp_path, ["000001_0.png"])
    upright = np.asarray(Image.open(tmp_path / "test_img" / "000001_0.png").convert("RGB"))
    exif = Image.Exif()
    exif[0x0112] = 6                           # shown turned 90 degrees clockwise
    Image.fromarray(np.rot90(upright).copy()).save(tmp_path / "test_img" / "000001_0.jpg",
                                                   exif=exif, quality=100)
    assert image_size(tmp_path / "test_img" / "000001_0.jpg") == (128, 96)
    # Pillow gives a TIFF's size already turned: not turned twice.
    Image.fromarray(np.rot90(upright).copy()).save(tmp_path / "turned.tif", exif=exif)
    assert image_size(tmp_path / "turned.tif") == (128, 96)
    assert read_rgb(str(tmp_path / "turned.tif")).shape[:2] == (128, 96)   # as training reads it
    shown = cv2.imread(str(tmp_path / "test_img" / "000001_0.jpg"))[:, :, ::-1]
    Image.fromarray(shown).save(tmp_path / "results" / "000001_0__000001_1.png")
    (tmp_path / "pairs.txt").write_text("000001_0.jpg 000001_1.jpg\n")
    scores = evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                              metrics=("ssim",))
    assert scores["image_size"] == [128, 96] and scores["ssim"] > 0.999


def test_a_results_folder_that_cannot_be_looked_into_is_named(tmp_path, monkeypatch):
    """Without permission on the folder, Path.is_file raised a PermissionError traceback."""
    import pathlib
    make_test_folders(tmp_path, ["000001_0.png"])

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))
    monkeypatch.setattr(pathlib.Path, "is_file", refuse)
    with pytest.raises(MetricsError, match=f"^{tmp_path / 'results'}: cannot look into the "
                                           f"folder \\(Permission denied\\)$"):
        evaluate_folders(tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt",
                         metrics=("ssim",))


def test_unpaired_pairs_are_not_scored_with_ssim_or_lpips(capsys):
    from utils.metrics import MetricsError
    from utils.metrics.folders import applicable_metrics
    assert applicable_metrics("ssim,lpips,fid", paired=True) == ("ssim", "lpips", "fid")
    assert applicable_metrics("ssim,lpips,fid", paired=False) == ("fid",)
    assert "not scoring ssim, lpips: the pairs are unpaired" in capsys.readouterr().out
    with pytest.raises(MetricsError, match="unpaired pairs have FID only"):
        applicable_metrics(["ssim"], paired=False)
    # LPIPS's flags on unpaired pairs did nothing, without a word.
    with pytest.raises(MetricsError, match=r"^--lpips_backbone_weights: for the LPIPS score, "
                                           r"not scored on unpaired pairs$"):
        applicable_metrics("lpips,fid", False, {"lpips_backbone_weights", "metrics"})
    assert applicable_metrics("lpips,fid", True, {"lpips_backbone_weights"}) == ("lpips", "fid")
    assert applicable_metrics("lpips,fid", False, {"fid_weights", "allow_random_weights"}) == \
        ("fid",)


def test_images_too_small_or_too_few_for_a_score_are_refused_before_scoring(tmp_path):
    # Try-ons of 24x18 crashed in LPIPS's pooling, of 8x6 in SSIM, and FID of one pair in its
    # covariance: tracebacks after the networks were built (after test.py wrote every try-on).
    make_test_folders(tmp_path, ["000001_0.png", "000002_0.png"])
    results, photos, pairs = tmp_path / "results", tmp_path / "test_img", tmp_path / "pairs.txt"
    for result in results.iterdir():
        Image.open(result).resize((18, 24)).save(result)
    with pytest.raises(MetricsError, match="LPIPS needs images of at least 31 pixels a side; "
                                           ".*000001_0__000001_1.png is scored at 24x18"):
        evaluate_folders(results, photos, pairs, metrics=("ssim", "lpips"),
                         allow_random_weights=True)
    assert evaluate_folders(results, photos, pairs, metrics=("ssim",))["image_size"] == [24, 18]
    assert evaluate_folders(results, photos, pairs, metrics=("lpips",), lpips_net="vgg",
                            allow_random_weights=True)["lpips"] >= 0    # vgg takes 16 a side
    for result in results.iterdir():
        Image.open(result).resize((6, 8)).save(result)
    with pytest.raises(MetricsError, match="SSIM needs images of at least 11 pixels a side"):
        evaluate_folders(results, photos, pairs, metrics=("ssim",))
    (tmp_path / "one.txt").write_text("000001_0.png 000001_1.png\n")
    with pytest.raises(MetricsError, match="FID needs at least 2 try-ons and 2 person photos.*"
                                           "give 1 and 1"):
        evaluate_folders(results, photos, tmp_path / "one.txt", metrics=("fid",),
                         allow_random_weights=True)
