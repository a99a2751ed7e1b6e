"""twin: a City Information Modelling digital-twin engine.

``import twin`` stays light: heavy optional dependencies (PyVista, Dask) are imported where used.
"""

import os

# The C++ core's parallel loops are short (several per traffic or crowd step). With OpenMP's active waiting a
# thread spins at each barrier on the CPU that a descheduled sibling needs, so on a busy machine 2 threads ran many
# times slower than 1; passive waiting (sleep at the barrier) measured no slower than 1 thread on a loaded 2-core
# machine (bench/bench_traffic.py grid10). Only read when the OpenMP runtime loads, i.e. with the core; a user's
# own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from twin.errors import InputError, TwinError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["InputError", "TwinError", "__version__"]
