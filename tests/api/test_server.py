"""How the service's own process is set up to run (`activity_feed.api.server`)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from activity_feed.api.server import SWITCH_INTERVAL_SECONDS

TIMEOUT_SECONDS = 60

# Run in a process of its own: freezing and retuning the collector would change this test process's.
_COLLECTOR_PROBE = textwrap.dedent(
    """
    import gc
    import sys
    import weakref

    from activity_feed.api import create_app
    from activity_feed.api.server import GC_YOUNG_THRESHOLD, tune_interpreter
    from activity_feed.settings import Settings

    create_app(Settings(database_url="sqlite:///unused.db"))
    tune_interpreter()
    print("frozen", gc.get_freeze_count())
    print("young threshold", gc.get_threshold()[0])
    print("switch interval", sys.getswitchinterval())

    class Node:
        pass

    collected = []
    made = 0
    # Cyclic garbage only: refcounting frees none of it, so only the collector, run by allocation
    # alone (no gc.collect here), can call the finalizers.
    while not collected and made < 10 * GC_YOUNG_THRESHOLD:
        first, second = Node(), Node()
        first.other, second.other = second, first
        weakref.finalize(first, collected.append, made)
        del first, second
        made += 1
    print("cycles made before the first was collected", made if collected else "never")
    """
)


def test_the_service_process_freezes_start_up_still_collects_cycles_and_switches_threads_sooner() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _COLLECTOR_PROBE],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=True,
    )
    lines = dict(line.rsplit(" ", 1) for line in probe.stdout.splitlines())
    # Everything the imports and the app made is out of every later collection.
    assert int(lines["frozen"]) > 50_000
    assert int(lines["young threshold"]) == 50_000
    # The collector still runs on its own: reference cycles do not pile up without bound.
    assert lines["cycles made before the first was collected"] != "never"
    assert int(lines["cycles made before the first was collected"]) <= 50_000
    # A thread waiting for the interpreter lock gets it after 0.5 ms instead of Python's 5 ms.
    assert float(lines["switch interval"]) == SWITCH_INTERVAL_SECONDS
