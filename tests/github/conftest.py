from __future__ import annotations

import pytest
from tests.github.fake_github import TOKEN, FakeGitHub

from calibgate.github import GitHubClient


@pytest.fixture
def gh():
    with FakeGitHub() as server:
        yield server


@pytest.fixture
def client(gh) -> GitHubClient:
    return GitHubClient(TOKEN, api_url=gh.url, timeout=5, backoff=0)
