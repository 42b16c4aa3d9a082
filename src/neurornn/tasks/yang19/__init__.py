"""The multitask set of Yang, Joglekar, Song, Newsome and Wang (2019): ``yang19`` and ``yang19_<rule>``."""

from ._rules import RULES
from .task import PERIODS, SINGLE_TASKS, Yang19, popvec

__all__ = ["PERIODS", "RULES", "SINGLE_TASKS", "Yang19", "popvec"]
