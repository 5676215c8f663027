"""The dashboard's fixtures (a miniature zoo, its own cache and workspace) for the fault suite's AppTests."""

from tests.apptest.conftest import app, dash_env, mini_zoo  # noqa: F401 (fixtures)
