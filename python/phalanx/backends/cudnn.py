"""torch.backends.cudnn's switches with PyTorch's defaults; no cuDNN here."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    """None, as PyTorch's when cuDNN is absent."""
    return None
