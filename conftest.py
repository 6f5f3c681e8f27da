"""pytest set-up shared by the unit tests and the nbval run of the notebooks."""


def pytest_collectstart(collector):
    """Notebooks: never compare stderr (library warnings, progress bars) or HTML renderings."""
    if getattr(collector, "fspath", None) is not None and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr", "text/html", "application/javascript")


# ------------------------------------------------------------------------ no litter (issue 14)
# Training and the notebooks write scratch folders named course-* in the temporary directory
# and must remove them. The controlling pytest process (not an xdist worker) lists the ones
# that appeared during the run and are still there at the end, and fails the run if any are.
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

_STARTED = time.time()


def _litter() -> list[Path]:
    return sorted(p for p in Path(tempfile.gettempdir()).glob("course-*")
                  if p.stat().st_mtime >= _STARTED - 1)


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the controller checks
        return
    left = _litter()
    if left:
        names = "\n  ".join(str(p) for p in left)
        print(f"\nFAILED: the run left {len(left)} scratch folder(s) behind; whatever wrote "
              f"them must remove them (train._scratch does, a notebook ends with shutil.rmtree):"
              f"\n  {names}")
        session.exitstatus = 1
