"""phalanx.cuda: no CUDA devices; the functions scripts call answer so. A module, as PyTorch's
is, so `import torch.cuda` runs unchanged with the import swapped."""

from ._device import DeviceUnavailableError, check_device


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    return False


def manual_seed(seed: int) -> None:
    """No CUDA generator to seed; accepted so seeding preambles run."""


def manual_seed_all(seed: int) -> None:
    """No CUDA generators to seed; accepted so seeding preambles run."""


def synchronize(device=None) -> None:
    """Nothing runs asynchronously on a device here."""


def empty_cache() -> None:
    """No device memory to release."""


def current_device() -> int:
    raise DeviceUnavailableError("Torch not compiled with CUDA enabled (phalanx: CPU only)")


def set_device(device) -> None:
    check_device(device if not isinstance(device, int) else f"cuda:{device}", "set_device")
