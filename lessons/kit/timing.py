"""One knob for every wait in the kit and the tests: ``WSLAB_TIMEOUT_SCALE``.

On a slow or loaded machine, ``WSLAB_TIMEOUT_SCALE=3`` triples every timeout without
changing what any test asserts.
"""

import os


def scaled(seconds: float) -> float:
    """``seconds`` multiplied by ``WSLAB_TIMEOUT_SCALE`` (default 1)."""
    return seconds * float(os.environ.get("WSLAB_TIMEOUT_SCALE", "1"))
