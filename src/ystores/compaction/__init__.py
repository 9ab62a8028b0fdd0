"""Compaction: squash a document's log into one snapshot, by policy, off the write path."""

from .policy import CompactionPolicy, LogStats, SquashReport

__all__ = ["CompactionPolicy", "LogStats", "SquashReport"]
