"""What networks a method can train, declared on the method and checked before any work."""
from __future__ import annotations

import dataclasses
import typing

from ..transfer import Linear


@dataclasses.dataclass(frozen=True)
class Networks:
    """The networks a method can train; :meth:`Method.check_net` checks them before training.

    Parameters
    ----------
    fully_connected : bool
        Only fully connected (Linear) layers: no convolution, no pooling.
    activations : tuple of str, or None
        The names (``("relu",)``) of the nonlinearities allowed between the layers, or None
        for any.
    """

    fully_connected: bool = False
    activations: typing.Optional[tuple] = None

    def check(self, net, method="this method"):
        """Raise ValueError naming the first layer of ``net`` that the method cannot train."""
        for l, blk in enumerate(net.blocks, start=1):
            if self.fully_connected and not isinstance(blk.phi, Linear):
                raise ValueError(f"method {method!r} trains {self} only; layer {l} is "
                                 f"{blk.phi!r}")
            if self.activations is not None and l < len(net.blocks) \
                    and getattr(blk.sigma, "name", None) not in self.activations:
                raise ValueError(f"method {method!r} trains {self} only; layer {l} is followed "
                                 f"by {blk.sigma!r}")

    def __str__(self):
        if not self.fully_connected and self.activations is None:
            return "any network"
        what = "fully connected networks" if self.fully_connected else "networks"
        if self.activations is not None:
            what += " with " + " or ".join(self.activations) + " between the layers"
        return what


ANY_NETWORK = Networks()
RELU_MLP = Networks(fully_connected=True, activations=("relu",))
