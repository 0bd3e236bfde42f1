"""phalanx.distributed.elastic: data-parallel training that survives a lost rank in place.

    state = elastic.State(model=ddp, optimizer=opt, sampler=sampler, step=0)

    @elastic.run
    def train(state):
        while state.step < steps:
            ...one step...
            state.step += 1
            if state.step % 10 == 0:
                state.commit()

    train(state)

When a rank is lost the survivors re-form the world as a new generation (ranks renumbered
densely; get_rank()/get_world_size() report the new values), restore the last commit and call
train(state) again. See docs/elastic.md.
"""

from __future__ import annotations

from ._errors import ElasticError, RemovedFromJob, TooFewRanks
from ._run import run
from ._state import State

__all__ = ["ElasticError", "RemovedFromJob", "State", "TooFewRanks", "run"]
