"""Measuring oven's memory: the process tree by component (RSS, PSS) and the cgroup's figures.

Plain classes, no actors: MemoryWatch drives them. `oven mem -- COMMAND` uses the same engine to
report the true peak of any command's process tree.
"""

from ._cgroup import CgroupMemory, CgroupReader, resolve_budget
from ._harness import add_parser, cmd_mem
from ._sampler import ProcessFigure, TreeSample, TreeSampler
from ._settings import COMPONENTS, ComponentRule, MemorySettings, default_rules

__all__ = [
    "COMPONENTS",
    "CgroupMemory",
    "CgroupReader",
    "ComponentRule",
    "MemorySettings",
    "ProcessFigure",
    "TreeSample",
    "TreeSampler",
    "add_parser",
    "cmd_mem",
    "default_rules",
    "resolve_budget",
]
