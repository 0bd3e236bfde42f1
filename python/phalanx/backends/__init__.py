"""phalanx.backends: PyTorch's backend switches, as modules (as in PyTorch), so that
`import torch.backends.cudnn as cudnn` and `from torch.backends import mps` run unchanged
with the import swapped. The flags can be read and set as scripts do; none changes what
phalanx computes (there is no cuDNN or MPS here; oneDNN is phalanx's kernel library).
`onednn` is phalanx's own: switches that do change what oneDNN runs (Winograd)."""

from . import cudnn, mkldnn, mps, onednn, openmp

__all__ = ["cudnn", "mkldnn", "mps", "onednn", "openmp"]
