"""Fixtures: real federations (see harness.py), started once per test session."""

from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import LocalFederation  # noqa: E402

import fsc_client  # noqa: E402


@pytest.fixture(scope="session")
def federation() -> Iterator[LocalFederation]:
    """alice, bob and carol over https (a private CA), each node with an API client's token."""
    fed = LocalFederation(["alice", "bob", "carol"], tls=True, tokens=True)
    yield fed
    fed.stop()


@pytest.fixture(scope="session")
def small_federation() -> Iterator[LocalFederation]:
    """alice and bob over plain http without tokens; alice runs at most 4 computations at once,
    so that submissions beyond are refused with Retry-After."""
    fed = LocalFederation(["alice", "bob"], env={"FSC_MAX_ACTIVE_COMPUTATIONS": "4"})
    yield fed
    fed.stop()


@pytest.fixture()
def nodes(federation: LocalFederation) -> Iterator[dict]:
    """A Node client of each party of `federation`, with its token and the CA."""
    clients = {
        party: fsc_client.Node(url, token=federation.tokens[party], ca_file=federation.ca_file)
        for party, url in federation.urls.items()
    }
    yield clients
    for client in clients.values():
        client.close()
