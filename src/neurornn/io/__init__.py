"""Neural data in and out: NWB files (pynwb, an optional extra: ``pip install 'neurornn[nwb]'``).

- :func:`to_nwb` / :func:`read_nwb`: a run's activity, weights, units and trials in an NWB file and back.
- :func:`load_nwb_recording`: recorded rates (or spikes binned to rates), trials and stimuli of any NWB
  file, as a :class:`~neurornn.analysis.curbd.Recording` to fit (:func:`fit_nwb`).

pynwb is imported only inside these functions, so ``import neurornn`` never needs it.
"""

from .fit import fit_nwb
from .nwb import NWBNetworkData, read_nwb, to_nwb
from .recording import load_nwb_recording

__all__ = ["to_nwb", "read_nwb", "NWBNetworkData", "load_nwb_recording", "fit_nwb"]
