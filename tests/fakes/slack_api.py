"""Loopback fake of Slack: the implementation lives in :mod:`tests.fakes.slack` (see its docstring).

``from tests.fakes.slack_api import FakeSlack`` and ``from tests.fakes.slack import FakeSlack`` are
the same thing.
"""

from tests.fakes.slack import *  # noqa: F403
from tests.fakes.slack import __all__ as __all__
