"""Algorithms built on the collectives: communication hooks for DistributedDataParallel."""
