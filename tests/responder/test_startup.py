"""A server process freezes what it loaded at startup out of the garbage collector's walks:
a full collection over it held the GIL for 190–290 ms, the alarm flood's latency tail."""

import json
import os
import subprocess
import sys

import pytest

from tests.servers import ROOT

PROBE = """
import gc, json, sys
import {entry}
print(json.dumps({{"frozen": gc.get_freeze_count(), "walked": len(gc.get_objects()),
                   "webhook loaded": "responder.alarms.api" in sys.modules}}))
"""


@pytest.mark.parametrize("entry", ["responder.wsgi", "responder.asgi"])
def test_a_server_process_leaves_its_startup_out_of_garbage_collection(entry):
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "DEBUG": "true"}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE.format(entry=entry)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    objects = json.loads(probe.stdout.splitlines()[-1])

    # The URLconf's views are loaded before the freeze, so they are in it.
    assert objects["webhook loaded"]
    assert objects["frozen"] > 50 * objects["walked"], objects
