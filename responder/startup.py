"""What a server process does once Django is loaded, before it serves anything."""

import gc
from importlib import import_module

from django.conf import settings


def startup_frozen() -> None:
    """Takes startup's objects out of the garbage collector's walks.

    Settings, apps, models and the URLconf's views are ~170,000 objects that live as long as
    the process. Each full collection walked them all, holding the GIL: 190–290 ms during
    which none of the process's requests or sockets moved. That was the alarm flood's
    latency tail (docs/BENCHMARKS.md). Frozen, a full collection walks only what came since.
    The views are imported first so that they are frozen too.
    """
    import_module(settings.ROOT_URLCONF)
    gc.freeze()
