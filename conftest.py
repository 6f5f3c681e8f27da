"""pytest set-up shared by the unit tests and the nbval run of the notebooks."""


def pytest_collectstart(collector):
    """Notebooks: never compare stderr (library warnings, progress bars) or HTML renderings."""
    if getattr(collector, "fspath", None) is not None and collector.fspath.ext == ".ipynb":
        collector.skip_compare += ("stderr", "text/html", "application/javascript")
