"""fsc_client against real nodes: a real nats-server and real `fsc node` processes (harness.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from harness import until

import fsc_client
from fsc_client import (
    AsyncFederation,
    AsyncNode,
    ComputationFailed,
    Federation,
    Node,
    ProblemError,
    TransportError,
    WaitTimeout,
)

PARTIES = ["alice", "bob", "carol"]


def test_a_sum_through_each_node_and_through_the_federation(nodes):
    alice, bob, carol = (nodes[p] for p in PARTIES)
    assert alice.info()["id"] == "alice"
    # No dp computation has run: the budget shows nothing spent, under no period or cap.
    budget = alice.budget()
    assert budget["period_days"] is None and all(c["computations"] == 0 for c in budget["clients"])
    assert alice.ready()
    accepted = alice.submit("SecureSum", PARTIES, 19)
    assert accepted.status in ("pending", "running") and not accepted.final
    bob.submit("SecureSum", PARTIES, 5, id=accepted.id)
    carol.submit("SecureSum", PARTIES, 61, id=uuid.UUID(accepted.id))
    done = bob.wait(accepted.id, timeout=60)
    assert done.status == "succeeded", done
    assert done.result == {"samples": 3, "sum": 85.0}
    assert done.inputs == 3 and done.microprotocol == "SecureSum" and done.parties == PARTIES
    assert done.to_dict()["output"] == {"inputs": 3, "result": {"samples": 3, "sum": 85.0}}
    # Submitting again is idempotent: the status, the first input standing.
    assert alice.submit("SecureSum", PARTIES, 1000, id=accepted.id).id == accepted.id
    assert alice.wait(accepted.id).result["sum"] == 85.0

    federated = Federation(nodes).compute("SecureSum", {"alice": 1.5, "bob": 2.25, "carol": -1})
    assert federated.result == {"samples": 3, "sum": 2.75}
    assert set(federated) == set(PARTIES) and all(c.succeeded for c in federated.values())


def test_proposals_are_listed_and_declined_and_receipts_read(nodes):
    alice, bob, carol = (nodes[p] for p in PARTIES)
    proposed = alice.submit("SecureSum", PARTIES, 7, parameters={"digits_after": 2})
    assert alice.status(proposed.id).waiting_for == ["bob", "carol"]
    listed = until(
        "bob lists alice's proposal",
        lambda: [p for p in bob.proposals() if p["id"] == proposed.id],
    )
    assert listed[0]["proposer"] == "alice" and listed[0]["parties"] == PARTIES
    assert listed[0]["parameters"]["digits_after"] == 2 and "input" not in listed[0]
    declined = bob.decline(proposed.id)
    assert declined.status == "failed" and declined.error["code"] == "declined"
    failed = alice.wait(proposed.id, timeout=60)
    assert (failed.error["code"], failed.error["party"]) == ("declined", "bob"), failed
    with pytest.raises(ComputationFailed):
        failed.result
    with pytest.raises(ProblemError) as unknown:
        carol.decline(uuid.uuid4())
    assert unknown.value.status == 404

    summed = Federation(nodes).compute("SecureSum", {"alice": 1, "bob": 2, "carol": 3})
    receipt = until("alice's receipt is complete", lambda: (r := alice.receipt(summed.id))["complete"] and r)
    assert receipt["output"]["result"]["sum"] == 6.0
    assert [(s["party"], s["status"]) for s in receipt["signatures"]] == [(p, "signed") for p in PARTIES]


def test_univariate_statistics_and_a_contingency_table_as_frames(nodes):
    fed = Federation(nodes)
    data = {"alice": [1.0, 2.0, 3.0], "bob": [4.0, 5.0], "carol": [6.0]}
    univariate = fed.compute("StatisticsUnivariate", data)
    stats = univariate.result
    assert stats["samples"] == 6 and stats["mean"] == 3.5 and stats["minimum"] == 1.0
    frame = univariate.to_frame()
    assert frame.shape == (1, len(stats)) and frame.loc[0, "maximum"] == 6.0

    pairs = {
        "alice": [["smoker", "yes"], ["smoker", "no"]],
        "bob": [["non-smoker", "no"], ["smoker", "yes"]],
        "carol": [["non-smoker", "no"]],
    }
    table = fed.compute("StatisticsContingency", pairs).to_frame()
    assert table.loc["smoker", "yes"] == 2 and table.loc["smoker", "no"] == 1
    assert table.loc["non-smoker", "no"] == 2 and table.loc["non-smoker", "yes"] == 0
    assert int(table.to_numpy().sum()) == 5

    histogram = fed.compute("StatisticsFrequency", {"alice": ["a", "b"], "bob": ["a"], "carol": []})
    assert histogram.to_frame()["count"].to_dict() == {"a": 2, "b": 1}


def test_a_matrix_product_with_a_helper_is_a_frame(nodes):
    # alice and bob multiply; carol, the third member, helps without an input. A 2×2 X hands
    # bob's column to alice, which they accept here (else bob's node refuses: revealing_shapes).
    product = Federation(nodes).compute(
        "SecureMatrixMultiplication",
        {"alice": [[[1, 2], [3, 4]]], "bob": [[[5], [6]]]},
        parameters={"allow_revealing_shapes": True},
    )
    assert set(product) == {"alice", "bob"}
    assert product.to_frame().to_numpy().tolist() == [[17.0], [39.0]]


def test_errors_carry_the_problem_document(federation, nodes):
    alice = nodes["alice"]
    with pytest.raises(ProblemError) as refused:
        alice.submit("Nope", PARTIES, 1)
    error = refused.value
    assert (error.status, error.code) == (501, "unknown_microprotocol")
    assert "Nope" in error.detail and error.problem["code"] == "unknown_microprotocol"
    with pytest.raises(ProblemError) as refused:
        alice.submit("SecureSum", PARTIES, "nineteen")
    assert (refused.value.status, refused.value.code) == (400, "invalid_input")
    with pytest.raises(ProblemError) as missing:
        alice.status(uuid.uuid4())
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    wrong = Node(federation.urls["alice"], token="not-a-token", ca_file=federation.ca_file)
    with pytest.raises(ProblemError) as unauthorized:
        wrong.info()
    assert (unauthorized.value.status, unauthorized.value.code) == (401, "unauthorized")
    # Without the federation's CA the node's certificate is not trusted.
    with pytest.raises(TransportError):
        Node(federation.urls["alice"], token=federation.tokens["alice"]).info()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert not Node(f"http://127.0.0.1:{port}").ready()
    with pytest.raises(TransportError):
        Node(f"http://127.0.0.1:{port}").info()

    # A computation only alice joined: not final in time, then cancelled, then failed.
    waiting = alice.submit("SecureSum", PARTIES, 1)
    with pytest.raises(WaitTimeout) as timed_out:
        alice.wait(waiting.id, timeout=0.2)
    assert timed_out.value.computation.status in ("pending", "running")
    cancelled = alice.cancel(waiting.id)
    assert cancelled.status == "failed"
    with pytest.raises(ComputationFailed) as failed:
        cancelled.result
    assert failed.value.code == "cancelled" and failed.value.id == waiting.id

    # One party's input is refused: the federation raises that problem, and nobody waits.
    with pytest.raises(ProblemError) as refused:
        Federation(nodes).compute("SecureSum", {"alice": 1, "bob": "two", "carol": 3})
    assert refused.value.code == "invalid_input"


def test_lists_follow_every_page(nodes):
    alice = nodes["alice"]
    ids = [Federation(nodes).compute("SecureSum", {p: 1 for p in PARTIES}).id for _ in range(5)]
    paged = [c.id for c in alice.computations(page_size=2)]
    assert paged == [c.id for c in alice.list()], "every page, in order"
    assert paged[:5] == ids[::-1], "newest first"
    assert len(paged) == len(set(paged))
    assert [c.id for c in alice.list(limit=3)] == paged[:3]
    assert all(c.status == "succeeded" for c in alice.list(status="succeeded"))
    assert all(c.status == "failed" for c in alice.list(status="failed"))


def test_batches_are_chunked_and_honour_retry_after(small_federation):
    alice, bob = (Node(small_federation.urls[p]) for p in ("alice", "bob"))
    items = [fsc_client.submission("SecureSum", ["alice", "bob"], i) for i in range(6)]
    answers = {}

    def submit_at_alice() -> None:
        answers["alice"] = alice.batch(items, chunk_size=2)

    # alice runs at most 4 computations: her third chunk is refused (429, Retry-After) until
    # bob joins and the first four finish, and the client sends it again.
    thread = threading.Thread(target=submit_at_alice)
    thread.start()

    watcher = Node(small_federation.urls["alice"])
    until(
        "alice holds 4 computations",
        lambda: len(watcher.list(status="pending")) + len(watcher.list(status="running")) >= 4,
    )
    bob_answers = bob.batch([dict(item, input=10 * i) for i, item in enumerate(items)])
    thread.join(60)
    assert not thread.is_alive()
    assert all(isinstance(a, fsc_client.Computation) for a in answers["alice"]), answers
    assert all(isinstance(a, fsc_client.Computation) for a in bob_answers), bob_answers
    for i, item in enumerate(items):
        assert bob.wait(item["id"], timeout=60).result["sum"] == 11 * i
    metrics = httpx.get(f"{small_federation.urls['alice']}/metrics").text
    batch_requests = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("fsc_http_request_duration_seconds_count")
        and 'route="/v1/computations/batch"' in line
    )
    assert batch_requests >= 4, "three chunks, and the refused one again"


def test_the_async_client(federation):
    async def main() -> None:
        nodes = {
            p: AsyncNode(url, token=federation.tokens[p], ca_file=federation.ca_file)
            for p, url in federation.urls.items()
        }
        async with AsyncFederation(nodes) as fed:
            result = await fed.compute("SecureMedian", {"alice": [1, 5, 9], "bob": [2, 6], "carol": [3, 7, 8]})
            assert result.result == {"median": 5.5}
            assert (await nodes["alice"].receipt(result.id))["computation"] == result.id
            assert all(p["id"] != result.id for p in await nodes["bob"].proposals())
            assert await nodes["alice"].ready()
            assert (await nodes["alice"].budget())["period_days"] is None
            listed = await nodes["alice"].list(limit=1)
            assert listed[0].id == result.id
            with pytest.raises(ProblemError) as refused:
                await nodes["bob"].submit("Nope", PARTIES, 1)
            assert refused.value.code == "unknown_microprotocol"
            answers = await nodes["carol"].batch([{"microprotocol": "SecureSum", "parties": ["carol"], "input": 1}])
            assert isinstance(answers[0], ProblemError) and answers[0].code == "invalid_parties"

    asyncio.run(main())


def test_the_example_in_docs_runs(federation):
    script = Path(__file__).resolve().parents[3] / "docs" / "statistics.py"
    env = dict(
        os.environ,
        FSC_NODES=",".join(federation.urls.values()),
        FSC_TOKENS=",".join(t or "" for t in federation.tokens.values()),
        FSC_CA_FILE=federation.ca_file or "",
    )
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "mean" in done.stdout and "smoker" in done.stdout, done.stdout


def test_the_package_is_typed():
    package = Path(fsc_client.__file__).parent
    assert (package / "py.typed").is_file()
    assert fsc_client.__version__ == "0.1.0"
