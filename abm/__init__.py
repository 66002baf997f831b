"""common-purpose: an agent-based model of how a whole system comes to share a purpose.

The Common Purpose Model (South Tees Local Delivery Pilot, "You've Got This"):
Vision + Value + Collective function = Common purpose. See README.md and docs/ODD.md.

Example:
    >>> from abm import CommonPurposeModel
    >>> model = CommonPurposeModel(rng=1, steps=10).run()
    >>> model.week
    10
"""

from importlib.metadata import PackageNotFoundError, version

from abm.config import Config, ConfigError, load_config, presets
from abm.model import STEP_ORDER, CommonPurposeModel

try:
    __version__ = version("common-purpose")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+source"

__all__ = ["STEP_ORDER", "CommonPurposeModel", "Config", "ConfigError", "__version__", "load_config", "presets"]
