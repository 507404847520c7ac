r"""The numbers of every experiment at every scale (Section 5 of the paper).

A scale only sets numbers: data, sizes, epochs. The code path is the same for all of them.

* ``paper``: exactly the paper's setting (CIFAR-10, 45,000 training images, 50 epochs,
  batch 500, the 3072-4000-1000-4000-10 MLP, the Section 5.3 CNN); meant for a GPU.
* ``medium`` (Table 1 and Figure 3): Table 1 with the paper's MLP at full width
  (3072-4000-1000-4000-10) and minibatch 500, on the first 5,000 training images for 20
  epochs: every cell at the paper's width, in hours on two CPU cores. Figure 3 on all 45,000
  training images for 15 of the paper's 50 epochs: about an hour on two CPU cores.
* ``small``: the same experiment shrunk so that each finishes in minutes on two busy CPU
  cores (fewer images and epochs; Table 1 also narrows the MLP and the minibatch, Figure 3
  the minibatch). docs/reproduction.md lists every change.
* ``tiny``: synthetic data and toy widths, so that a test runs each experiment end to end in
  seconds.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

SCALES = ("tiny", "small", "medium", "paper")
PAPER_HIDDEN = (4000, 1000, 4000)  # Section 5.1: 3072 - 4000 - 1000 - 4000 - 10
PAPER_CHANNELS = (16, 20, 20)  # Section 5.3: Conv 16, 20, 20 filters of 5x5, each + max pool
TABLE1_TAUS = (50, 10, 5, 1, 0.5, 0.1, 0.05, 5e-3, 5e-4)  # Table 1's columns
TINY_IMAGE = (3, 8, 8)  # synthetic images of the tiny scale


@dataclass(frozen=True)
class Scale:
    """The numbers of one experiment at one scale.

    Attributes
    ----------
    data : {"cifar10", "synthetic"}
        ``"synthetic"``: tiny scale only.
    n_train : int or None
        Training images (None: all 45,000); the validation and test sets shrink by the same
        factor (``penaltyprop.data.load_dataset(subset=...)``).
    epochs, batch_size : int
        Training length and minibatch size.
    hidden : tuple of int
        Hidden widths of the MLP.
    channels : tuple of int
        Filters of the CNN's convolutions.
    image_shape : (C, H, W)
        Of the synthetic images (tiny scale only).
    """

    data: str = "cifar10"
    n_train: int | None = None
    epochs: int = 50
    batch_size: int = 500
    hidden: tuple = PAPER_HIDDEN
    channels: tuple = PAPER_CHANNELS
    image_shape: tuple = (3, 32, 32)

    def as_dict(self) -> dict:
        """JSON-able (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


_TINY = {"data": "synthetic", "n_train": 64, "epochs": 2, "batch_size": 16,
         "hidden": (16, 8, 16), "channels": (2, 3, 3), "image_shape": TINY_IMAGE}

#: SETTINGS[experiment][scale] -> Scale
SETTINGS = {
    "figure2": {
        "paper": Scale(),
        "small": Scale(n_train=5000, epochs=4),
        "tiny": Scale(**_TINY),
    },
    "table1": {
        "paper": Scale(),
        # 36 cells in minutes: the MLP 10x narrower, 1,000 images, minibatch 100.
        "small": Scale(n_train=1000, epochs=5, batch_size=100, hidden=(400, 100, 400)),
        # Table 1 at the paper's width and minibatch: 5,000 images, 20 epochs.
        "medium": Scale(n_train=5000, epochs=20),
        "tiny": Scale(**_TINY),
    },
    "figure3": {
        "paper": Scale(),
        "small": Scale(n_train=5000, epochs=8),
        # Fig. 3 on all 45,000 training images, 15 of the paper's 50 epochs.
        "medium": Scale(epochs=15),
        "tiny": Scale(**{**_TINY, "epochs": 2}),
    },
    "conditioning": {  # epochs and batch_size unused; n_train = images in X X^T
        "paper": Scale(),
        "small": Scale(n_train=10000),
        "tiny": Scale(**_TINY),
    },
}


# --------------------------------------------------------------------------- the family
@dataclass(frozen=True)
class FamilyData:
    """One data set of the family comparison and the MLP trained on it.

    Attributes
    ----------
    data : {"synthetic", "digits", "mnist", "cifar10"}
        ``"mnist"`` is the full set, or the CSV file given to the experiment.
    n_train : int or None
        Training images kept (None: all).
    hidden : tuple of int
        The hidden widths of the ReLU MLP.
    source_bcd : bool
        Also train BCD in its sources' setting (squared loss, 3 x 1500, 50 sweeps).
    """

    data: str
    n_train: int | None = None
    hidden: tuple = (100, 100)
    source_bcd: bool = False


@dataclass(frozen=True)
class FamilyScale:
    """The numbers of the family comparison at one scale.

    Attributes
    ----------
    datasets : tuple of FamilyData
        The data sets (:class:`FamilyData`).
    epochs : int
        Epochs of the oracle methods = full-batch sweeps of the lifted ones.
    batch_size : int
        Minibatch of the oracle methods (BackProp, ProxProp, AltMin).
    image_shape : (C, H, W)
        Of the synthetic images.
    """

    datasets: tuple
    epochs: int = 50
    batch_size: int = 500
    image_shape: tuple = TINY_IMAGE

    def as_dict(self) -> dict:
        """JSON-able (tuples become lists)."""
        return {"datasets": [{**asdict(d), "hidden": list(d.hidden)} for d in self.datasets],
                "epochs": self.epochs, "batch_size": self.batch_size,
                "image_shape": list(self.image_shape)}


#: FAMILY_SETTINGS[scale] -> FamilyScale (apart from SETTINGS, whose entries are the
#: one-data-set :class:`Scale` of the paper's experiments)
FAMILY_SETTINGS = {
    # the sources' networks: MNIST 3 x 1500 (BCD), CIFAR-10 2 x 500 (alternating minimisation)
    "paper": FamilyScale((FamilyData("digits", None, (100, 100)),
                          FamilyData("mnist", None, (1500, 1500, 1500), True),
                          FamilyData("cifar10", None, (500, 500))), epochs=50, batch_size=500),
    # minutes on two busy cores: MNIST 784-300-10 (the ADMM report's network), 3,500 images
    # of the 5k CSV (or the full set's first 3,500), 4,000 CIFAR-10 images, 20 epochs, batch 100
    "small": FamilyScale((FamilyData("digits", None, (100, 100)),
                          FamilyData("mnist", 3500, (300,), True),
                          FamilyData("cifar10", 4000, (500, 500))), epochs=20, batch_size=100),
    "tiny": FamilyScale((FamilyData("synthetic", 64, (16, 16)),
                         FamilyData("digits", 200, (16, 16))), epochs=2, batch_size=32),
}
