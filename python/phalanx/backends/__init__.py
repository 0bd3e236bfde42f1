"""phalanx.backends: PyTorch's backend switches, as modules (as in PyTorch), so that
`import torch.backends.cudnn as cudnn` and `from torch.backends import mps` run unchanged
with the import swapped. The flags can be read and set as scripts do; none changes what
phalanx computes (there is no cuDNN or MPS here; oneDNN is phalanx's kernel library)."""

from . import cudnn, mkldnn, mps, openmp

__all__ = ["cudnn", "mkldnn", "mps", "openmp"]
