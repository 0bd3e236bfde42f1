"""torch.backends.mkldnn: oneDNN (formerly MKL-DNN) is phalanx's kernel library."""

enabled = True


def is_available() -> bool:
    return True
