"""torch.backends.mps: Apple's GPUs; never available here."""


def is_available() -> bool:
    return False


def is_built() -> bool:
    return False
