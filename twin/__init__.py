"""twin: a City Information Modelling digital-twin engine.

``import twin`` stays light: heavy optional dependencies (PyVista, Dask) are imported where used.
"""

from twin.errors import InputError, TwinError

__version__ = "0.1.0"

__all__ = ["InputError", "TwinError", "__version__"]
