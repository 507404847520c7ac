"""Model strings are parsed in one place (penaltyprop.model_spec), for the CLI and the bench alike.

``"mlp"`` is the paper's MLP (Section 5.1), ``"cnn"`` the paper's CNN (Section 5.3),
``"cnn-authors"`` the CNN of the authors' released code (no third pooling) and
``"n0-n1-...-C"`` an MLP of those widths; anything else is a ValueError naming ``model``.
"""
from types import SimpleNamespace

import pytest

from penaltyprop import bench
from penaltyprop.model_spec import PAPER_MLP, build_model, parse_model


@pytest.mark.parametrize("text, parsed", [
    ("mlp", (3072, 4000, 1000, 4000, 10)), ("cnn", "cnn"), ("cnn-authors", "cnn-authors"),
    ("784-300-10", (784, 300, 10)),
    ("5-3", (5, 3)), ((4, 2), (4, 2)), ([7, 1], (7, 1)),
])
def test_model_strings_parse(text, parsed):
    assert parse_model(text) == parsed


@pytest.mark.parametrize("text", ["abc", "10-0-3", "10", "", "3-x", "-3-4", (3,), (3, True), None])
def test_bad_model_strings_name_the_model(text):
    with pytest.raises(ValueError, match="model"):
        parse_model(text)


def test_the_mlp_fits_the_data_or_says_why():
    digits = SimpleNamespace(name="digits", n_features=64, n_classes=10, image_shape=(1, 8, 8))
    net, text = build_model("64-20-10", digits, "tanh")
    assert net.n_linear == 2 and net.n_classes == 10 and text == "MLP 64-20-10 (tanh)"
    with pytest.raises(ValueError, match="must start with digits's 64 input features"):
        build_model("63-20-10", digits)
    with pytest.raises(ValueError, match="end with its 10 classes"):
        build_model("64-20-9", digits)


def test_without_data_the_cnn_is_the_papers():
    """Conv 16, 20, 20 filters of 5x5 on 32x32x3 images, each pooled, then FC 320 -> 10."""
    net, text = build_model("cnn")
    assert text.startswith("CNN") and net.n_linear == 4 and net.phis[-1].in_shape == (320,)
    assert net.input_shape == (3, 32, 32) and net.n_classes == 10


def test_the_authors_cnn_has_no_third_pool():
    """The authors' code: Conv16 -> ReLU -> Pool -> Conv20 -> ReLU -> Pool -> Conv20 -> ReLU ->
    FC 1280 -> 10 (20 channels of 8 x 8 reach the FC layer)."""
    net, text = build_model("cnn-authors")
    assert text.startswith("CNN") and net.n_linear == 4 and net.phis[-1].in_shape == (1280,)
    assert [type(m).__name__ for m in net.sigmas[2].maps] == ["ReLU", "Flatten"]
    assert [type(m).__name__ for m in net.sigmas[1].maps] == ["ReLU", "MaxPool2d"]
    assert [phi.n_out for phi in net.phis] == [16, 20, 20, 10]
    mnist = SimpleNamespace(name="mnist", n_classes=10, image_shape=(1, 28, 28))
    net, _ = build_model("cnn-authors", mnist)  # 28 -> 14 -> 7, then the unpooled block
    assert net.n_linear == 4 and net.phis[-1].in_shape == (20 * 7 * 7,)


def test_the_bench_builds_the_same_networks():
    """The bench's problem uses the same parser: its network is build_model's."""
    net, *_ = bench.build_problem("20-16-10", batch_size=2)
    assert repr(net) == repr(build_model("20-16-10")[0])
    net, *_ = bench.build_problem(PAPER_MLP, batch_size=1)
    assert repr(net) == repr(build_model("mlp")[0])
