"""The offline demo (``pressreview demo``): bundled sample feeds, config and subscribers."""

from pressreview.demo.runner import DEFAULT_FOLDER, DemoReport, run_demo

__all__ = ["DEFAULT_FOLDER", "DemoReport", "run_demo"]
