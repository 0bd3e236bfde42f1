"""Idioms whose phalanx result differs from PyTorch's on purpose or for now, with the reason.

``test_idioms.py`` runs each as xfail(strict=True): one that starts passing must leave this list.
docs/compat.md repeats the list for users.
"""

KNOWN = {}
