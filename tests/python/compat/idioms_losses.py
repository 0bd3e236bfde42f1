"""Everyday loss idioms (issue 16, part B): each runs unchanged under torch and phalanx."""

import numpy as np

from ._registry import idiom


def _arr(shape, seed=0, scale=1.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


def _probs(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.05, 0.95, shape).astype(np.float32)


def _x(torch, shape, seed=0, grad=True):
    return torch.tensor(_arr(shape, seed), requires_grad=grad)


def _loss_and_grad(loss, x):
    loss.backward()
    return loss, x.grad


@idiom(rtol=1e-5, atol=1e-6)
def bce_loss_after_sigmoid(torch):
    x = _x(torch, (8,))
    return _loss_and_grad(torch.nn.BCELoss()(torch.sigmoid(x), torch.tensor(_probs((8,), 1))), x)


@idiom(rtol=1e-5, atol=1e-6)
def bce_loss_binary_labels(torch):
    p = torch.tensor(_probs((4, 3)), requires_grad=True)
    y = torch.tensor(np.array([[0, 1, 1], [1, 0, 0], [1, 1, 1], [0, 0, 0]], np.float32))
    return _loss_and_grad(torch.nn.functional.binary_cross_entropy(p, y), p)


@idiom(rtol=1e-5, atol=1e-6)
def bce_loss_sum_weighted(torch):
    p = torch.tensor(_probs((5, 2)), requires_grad=True)
    w = torch.tensor(np.array([0.2, 2.0], np.float32))
    loss = torch.nn.BCELoss(weight=w, reduction="sum")(p, torch.tensor(_probs((5, 2), 2)))
    return _loss_and_grad(loss, p)


@idiom(rtol=1e-5, atol=1e-6)
def bce_loss_none(torch):
    return torch.nn.BCELoss(reduction="none")(
        torch.tensor(_probs((3, 2))), torch.tensor(_probs((3, 2), 1))
    )


@idiom(rtol=1e-5, atol=1e-6)
def bce_with_logits(torch):
    x = _x(torch, (6, 4))
    y = torch.tensor((_probs((6, 4), 3) > 0.5).astype(np.float32))
    return _loss_and_grad(torch.nn.BCEWithLogitsLoss()(x, y), x)


@idiom(rtol=1e-5, atol=1e-6)
def bce_with_logits_pos_weight(torch):
    x = _x(torch, (6, 3))
    y = torch.tensor((_probs((6, 3), 3) > 0.5).astype(np.float32))
    crit = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 3.0, 0.5]))
    return _loss_and_grad(crit(x, y), x)


@idiom(rtol=1e-5, atol=1e-6)
def bce_with_logits_zero_logits(torch):
    x = torch.zeros(4, requires_grad=True)  # a zero-initialised head's first step
    return _loss_and_grad(
        torch.nn.functional.binary_cross_entropy_with_logits(x, torch.tensor([0.0, 1.0, 1.0, 0.0])),
        x,
    )


@idiom(rtol=1e-5, atol=1e-6)
def bce_with_logits_large_logits(torch):
    x = torch.tensor([80.0, -80.0, 30.0, -30.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    return _loss_and_grad(
        torch.nn.functional.binary_cross_entropy_with_logits(x, y, reduction="sum"), x
    )


@idiom(rtol=1e-5, atol=1e-6)
def bce_with_logits_weight_none(torch):
    x = _x(torch, (3, 2), grad=False)
    w = torch.tensor(_probs((3, 2), 5))
    return torch.nn.functional.binary_cross_entropy_with_logits(
        x, torch.tensor(_probs((3, 2), 1)), weight=w, reduction="none"
    )


@idiom
def l1_loss(torch):
    x = _x(torch, (4, 3))
    return _loss_and_grad(torch.nn.L1Loss()(x, torch.tensor(_arr((4, 3), 1))), x)


@idiom
def l1_loss_sum(torch):
    return torch.nn.functional.l1_loss(_x(torch, (5,), grad=False), torch.zeros(5), reduction="sum")


@idiom(rtol=1e-5, atol=1e-6)
def smooth_l1_loss_default(torch):
    x = _x(torch, (10,), grad=True)
    return _loss_and_grad(torch.nn.SmoothL1Loss()(x * 2, torch.zeros(10)), x)


@idiom(rtol=1e-5, atol=1e-6)
def smooth_l1_loss_beta(torch):
    x = _x(torch, (3, 4))
    return _loss_and_grad(
        torch.nn.functional.smooth_l1_loss(x, torch.tensor(_arr((3, 4), 2)), beta=0.3), x
    )


@idiom(rtol=1e-5, atol=1e-6)
def huber_loss(torch):
    x = _x(torch, (8,))
    return _loss_and_grad(torch.nn.HuberLoss(delta=0.5)(x, torch.zeros(8)), x)


@idiom(rtol=1e-4, atol=1e-5)
def kl_div_batchmean_distillation(torch):
    F = torch.nn.functional
    student = _x(torch, (4, 5))
    teacher = torch.tensor(_arr((4, 5), 7))
    T = 2.0
    loss = F.kl_div(
        F.log_softmax(student / T, dim=1), F.softmax(teacher / T, dim=1), reduction="batchmean"
    ) * (T * T)
    return _loss_and_grad(loss, student)


@idiom(rtol=1e-5, atol=1e-6)
def kl_div_log_target(torch):
    F = torch.nn.functional
    x = _x(torch, (3, 4))
    crit = torch.nn.KLDivLoss(reduction="batchmean", log_target=True)
    return _loss_and_grad(
        crit(F.log_softmax(x, 1), F.log_softmax(torch.tensor(_arr((3, 4), 1)), 1)), x
    )


@idiom(rtol=1e-5, atol=1e-6)
def kl_div_sum(torch):
    F = torch.nn.functional
    target = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    return F.kl_div(F.log_softmax(_x(torch, (2, 3), grad=False), 1), target, reduction="sum")


@idiom(rtol=1e-5, atol=1e-6)
def cross_entropy_probability_targets(torch):
    F = torch.nn.functional
    x = _x(torch, (4, 5))
    target = F.softmax(torch.tensor(_arr((4, 5), 9)), dim=1)
    return _loss_and_grad(F.cross_entropy(x, target), x)


@idiom(rtol=1e-5, atol=1e-6)
def cross_entropy_mixup_targets(torch):
    F = torch.nn.functional
    x = _x(torch, (4, 3))
    y1, y2 = torch.tensor([0, 1, 2, 1]), torch.tensor([2, 2, 0, 1])
    lam = 0.7
    target = lam * F.one_hot(y1, 3).float() + (1 - lam) * F.one_hot(y2, 3).float()
    return _loss_and_grad(torch.nn.CrossEntropyLoss()(x, target), x)


@idiom(rtol=1e-5, atol=1e-6)
def cross_entropy_probabilities_smoothing_weight(torch):
    x = _x(torch, (3, 4))
    target = torch.tensor(_probs((3, 4), 2))
    crit = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0, 0.5, 1.0]), label_smoothing=0.1)
    return _loss_and_grad(crit(x, target), x)


@idiom(rtol=1e-5, atol=1e-6)
def cross_entropy_label_smoothing(torch):
    x = _x(torch, (5, 4))
    return _loss_and_grad(
        torch.nn.CrossEntropyLoss(label_smoothing=0.1)(x, torch.tensor([0, 3, 1, 1, 2])), x
    )


# The gradient softmax(x) - target cancels where the two are close: its error is that of the
# probabilities (~1e-5 of p <= 1 through oneDNN's log_softmax, whose log-probabilities are good
# to a few 1e-6 absolute), not a fraction of the small difference.
@idiom(rtol=1e-5, atol=1e-5)
def cross_entropy_probabilities_segmentation(torch):
    F = torch.nn.functional
    x = _x(torch, (2, 3, 4, 4))
    target = F.softmax(torch.tensor(_arr((2, 3, 4, 4), 4)), dim=1)
    return _loss_and_grad(F.cross_entropy(x, target, reduction="sum"), x)


@idiom(rtol=1e-5, atol=1e-6)
def cross_entropy_ignore_index(torch):
    x = _x(torch, (4, 3))
    loss = torch.nn.CrossEntropyLoss(ignore_index=-1)(x, torch.tensor([0, -1, 2, 1]))
    return _loss_and_grad(loss, x)


@idiom(rtol=1e-5, atol=1e-6)
def multi_task_loss_sum(torch):
    nn = torch.nn
    x = _x(torch, (4, 3))
    cls = nn.CrossEntropyLoss()(x, torch.tensor([0, 1, 2, 0]))
    reg = nn.SmoothL1Loss()(x[:, 0], torch.zeros(4))
    aux = nn.BCEWithLogitsLoss()(x[:, 1], torch.ones(4))
    return _loss_and_grad(cls + 0.5 * reg + 0.1 * aux, x)


@idiom(rtol=1e-5, atol=1e-6)
def loss_item_is_a_float(torch):
    loss = torch.nn.L1Loss()(torch.ones(3), torch.zeros(3))
    return type(loss.item()).__name__, loss.item()


@idiom
def bce_out_of_range_raises(torch):
    return torch.nn.functional.binary_cross_entropy(torch.tensor([1.5]), torch.tensor([1.0]))


@idiom
def smooth_l1_negative_beta_raises(torch):
    return torch.nn.functional.smooth_l1_loss(torch.zeros(2), torch.zeros(2), beta=-1.0)
