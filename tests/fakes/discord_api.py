"""Import point of the fake Discord: ``from tests.fakes.discord_api import FakeDiscord``.

The implementation and its documentation live in the package ``tests/fakes/discord/``.
"""

from tests.fakes.discord import *  # noqa: F403
from tests.fakes.discord import __all__  # noqa: F401
