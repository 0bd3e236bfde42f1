"""Why an elastic job stops on a rank: each says so in its message, for the launcher's report."""

from __future__ import annotations


class ElasticError(RuntimeError):
    """Base of the elastic stops below."""


class RemovedFromJob(ElasticError):
    """This rank was left out of the job's newer generation (it froze, or was too slow to
    re-rendezvous, while the others moved on): its old generation is refused."""


class TooFewRanks(ElasticError):
    """A loss left fewer ranks than min_nproc: every rank stops."""
