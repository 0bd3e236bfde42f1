"""The implementation of phalanx.distributed.run (the notebook driver), split by concern.

- transport: pickling by value (cloudpickle, phalanx tensors as arrays) and moving the bytes
  through the launcher's rendezvous store in chunks (the store caps one value at 16 MiB)
- rank: the program every rank runs (`python -m phalanx.distributed._driver.rank`): fetches
  the function, runs it inside an initialised process group, stores the result or the error
- launcher: the launcher's supervisor, adapted: shows rank 0's output (or every rank's) on
  this interpreter's sys.stdout/sys.stderr (a Jupyter cell), keeps the tail of each rank's
  stderr, reads the results before the store goes away
- api: run() itself, its argument checks, and RankError

Nothing is imported here, so the rank program does not pull in the driver side.
"""
