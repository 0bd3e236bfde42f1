"""The device preamble and moves every script does, answered honestly on a CPU."""

import importlib

import numpy as np

from ._registry import idiom


@idiom
def pick_device_preamble(torch):
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return device, str(device), device.type


@idiom
def accelerator_preamble(torch):
    if torch.accelerator.is_available():
        return torch.accelerator.current_accelerator()
    return torch.device("cpu")


@idiom
def mps_or_cpu(torch):
    return "mps" if torch.backends.mps.is_available() else "cpu"


@idiom
def cuda_device_count(torch):
    return torch.cuda.device_count()


@idiom
def cudnn_flags(torch):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.deterministic = True
    flags = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = False
    return flags


@idiom
def import_backends_cudnn_as_module(torch):
    # `import torch.backends.cudnn as cudnn` (kuangliu/pytorch-cifar's main.py)
    cudnn = importlib.import_module(torch.__name__ + ".backends.cudnn")
    cudnn.benchmark = True
    flag = torch.backends.cudnn.benchmark
    cudnn.benchmark = False
    return flag, cudnn.is_available() is torch.backends.cudnn.is_available()


@idiom
def from_backends_import_mps(torch):
    mps = importlib.import_module(torch.__name__ + ".backends").mps
    return mps.is_available(), mps.is_built()


@idiom
def import_torch_cuda(torch):
    cuda = importlib.import_module(torch.__name__ + ".cuda")
    return cuda.is_available(), cuda.device_count(), cuda is torch.cuda


@idiom
def tensor_to_device(torch):
    x = torch.tensor([1.0, 2.0]).to(torch.device("cpu"))
    return x, x.device


@idiom
def tensor_to_string_device(torch):
    return torch.tensor([1.0]).to("cpu").device


@idiom
def tensor_to_non_blocking(torch):
    return torch.tensor([1.0, 2.0]).to("cpu", non_blocking=True)


@idiom
def tensor_to_dtype(torch):
    return torch.tensor([1.5, 2.5]).to(torch.int64)


@idiom
def tensor_to_device_and_dtype(torch):
    return torch.tensor([1, 2]).to("cpu", torch.float32)


@idiom
def tensor_to_keywords(torch):
    return torch.tensor([1, 2]).to(device="cpu", dtype=torch.float32)


@idiom
def tensor_to_other(torch):
    return torch.tensor([1, 2]).to(torch.tensor([0.5]))


@idiom
def tensor_cpu(torch):
    x = torch.tensor([3.0])
    return x.cpu(), x.cpu().device


@idiom
def tensor_is_cuda(torch):
    return torch.zeros(1).is_cuda


@idiom
def factory_device(torch):
    return torch.zeros(2, device="cpu"), torch.ones(2, 2, device=torch.device("cpu"))


@idiom
def arange_device(torch):
    return torch.arange(5, device="cpu")


@idiom
def tensor_device_kw(torch):
    return torch.tensor([1.0, 2.0], device="cpu", dtype=torch.float32)


@idiom
def randn_like_device(torch):
    return torch.zeros_like(torch.ones(3), device="cpu")


@idiom
def full_device(torch):
    return torch.full((2,), 7.0, device="cpu")


@idiom
def device_equality(torch):
    return torch.device("cpu") == torch.device("cpu"), torch.device("cpu") == torch.device("cuda")


@idiom
def device_with_index(torch):
    d = torch.device("cuda", 1)
    return str(d), d.type, d.index


@idiom
def device_repr(torch):
    return repr(torch.device("cpu"))


@idiom
def cuda_move_raises(torch):
    return torch.zeros(1).to("cuda")


@idiom
def cuda_method_raises(torch):
    return torch.zeros(1).cuda()


@idiom
def bad_device_string(torch):
    return torch.device("gpu")


@idiom
def module_to_device(torch):
    model = torch.nn.Linear(2, 1)
    device = torch.device("cpu")
    model = model.to(device)
    return next(model.parameters()).device


@idiom
def batch_to_device_loop(torch):
    device = torch.device("cpu")
    data = np.arange(6, dtype=np.float32).reshape(3, 2)
    x, y = torch.tensor(data), torch.tensor([0, 1, 0])
    x, y = x.to(device), y.to(device)
    return x.sum(), y.dtype


@idiom
def cuda_seed_calls(torch):
    torch.manual_seed(0)
    torch.cuda.manual_seed_all(0)
    return True


@idiom
def load_map_location(torch):
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "w.pt")
        torch.save({"w": torch.tensor([1.0, 2.0])}, path)
        a = torch.load(path, map_location="cpu")
        b = torch.load(path, map_location=torch.device("cpu"), weights_only=True)
    return a, b
