"""Task library: the ``Task`` interface, the registry and the tasks of the seeds."""

from ..ops.losses import masked_mse
from .base import Batch, Task, ms_to_steps
from .registry import UntrustedCodeError, describe, get, make, names, names_code, register, unregister

# Importing a task module registers it.
from . import perceptual_decision_making  # noqa: F401  (registers)
from . import flip_flop  # noqa: F401
from . import context_dependent_dm  # noqa: F401
from . import delayed_match_to_sample  # noqa: F401
from . import delayed_match_to_sample_cued  # noqa: F401
from . import go_no_go  # noqa: F401
from . import maze  # noqa: F401
from . import memory_anti_angle  # noqa: F401
from . import memory_anti_number  # noqa: F401
from . import sequential_digits  # noqa: F401
from . import sign_integration  # noqa: F401
from . import xor  # noqa: F401
from . import yang19  # noqa: F401  (registers yang19 and the 20 yang19_<rule>)

__all__ = ["Batch", "Task", "UntrustedCodeError", "describe", "get", "make", "masked_mse", "ms_to_steps", "names",
           "names_code", "register", "unregister"]
