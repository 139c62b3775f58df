"""oven's memory: the process tree by component (RSS, PSS), the cgroup's figures, and the
per-page ceiling (a cgroup per renderer, or a fast poller) that stops a runaway page at once.

Plain classes, no actors: MemoryWatch drives them. `oven mem -- COMMAND` uses the same engine to
report the true peak of any command's process tree.
"""

from ._ceilings import BrowserCgroup, CeilingPlan
from ._cgroup import CgroupMemory, CgroupReader, parse_mountinfo, resolve_budget
from ._harness import add_parser, cmd_mem
from ._plan import auto_pages, memory_budget, page_ceiling, pages_for, plan_ceilings
from ._renderer_watch import RendererWatch
from ._sampler import ProcessFigure, TreeSample, TreeSampler
from ._settings import COMPONENTS, ComponentRule, MemorySettings, default_rules
from ._verdict import RendererDeath, Verdict, classify_renderer_death, memory_message

__all__ = [
    "COMPONENTS",
    "BrowserCgroup",
    "CeilingPlan",
    "CgroupMemory",
    "CgroupReader",
    "ComponentRule",
    "MemorySettings",
    "ProcessFigure",
    "RendererDeath",
    "RendererWatch",
    "TreeSample",
    "TreeSampler",
    "Verdict",
    "add_parser",
    "auto_pages",
    "classify_renderer_death",
    "cmd_mem",
    "default_rules",
    "memory_budget",
    "memory_message",
    "page_ceiling",
    "pages_for",
    "parse_mountinfo",
    "plan_ceilings",
    "resolve_budget",
]
