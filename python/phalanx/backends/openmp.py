"""torch.backends.openmp: phalanx's kernels run on OpenMP threads."""


def is_available() -> bool:
    return True
