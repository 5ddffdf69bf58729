"""Several parties' nodes at once: what a notebook or a local trial wants, one call that
submits a computation at every party and waits until all of them have its result."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from ._async import AsyncNode
from ._computation import Computation, result_frame
from ._errors import ComputationFailed, FscError
from ._node import Node

if TYPE_CHECKING:  # pandas is optional: only to_frame() needs it
    import pandas


class FederatedResult(Mapping[str, Computation]):
    """One computation as every party's node ended it: a mapping party → :class:`Computation`.

    Attributes:
        id: the computation's id (the same at every party).
    """

    def __init__(self, id: str, computations: Mapping[str, Computation]) -> None:
        self.id = id
        self._computations = dict(computations)

    def __getitem__(self, party: str) -> Computation:
        return self._computations[party]

    def __iter__(self) -> Iterator[str]:
        return iter(self._computations)

    def __len__(self) -> int:
        return len(self._computations)

    def __repr__(self) -> str:
        statuses = ", ".join(f"{p}: {c.status}" for p, c in self._computations.items())
        return f"FederatedResult({self.id}, {statuses})"

    @property
    def failed(self) -> Dict[str, Computation]:
        """The parties at which the computation failed, with their view."""
        return {p: c for p, c in self._computations.items() if c.status == "failed"}

    @property
    def result(self) -> Dict[str, Any]:
        """The result, a plain dict, as every party received it.

        Raises:
            ComputationFailed: it failed (at every party: a failure reaches them all).
            FscError: the parties received different results (never expected).
        """
        for computation in self._computations.values():
            if computation.status == "failed":
                raise ComputationFailed(computation.id, computation.error or {})
        results = [c.result for c in self._computations.values()]
        if any(r != results[0] for r in results[1:]):
            raise FscError(f"computation {self.id}: the parties' results differ: {results}")
        return results[0]

    def to_frame(self) -> "pandas.DataFrame":
        """The result as a pandas DataFrame (see :func:`fsc_client.result_frame`)."""
        return result_frame(self.result)


def _nodes(nodes: Union[Mapping[str, Any], Sequence[Any]], info: Any) -> Dict[str, Any]:
    if isinstance(nodes, Mapping):
        return dict(nodes)
    return {info(node)["id"]: node for node in nodes}


class Federation:
    """The nodes of several parties, each with its client (:class:`Node`): submits one
    computation at all of them and waits for every result.

    Args:
        nodes: party id → :class:`Node`, or a list of nodes (each is then asked its party id,
            ``GET /v1/node``).

    Example::

        fed = Federation({"alice": Node("http://127.0.0.1:55501"),
                          "bob": Node("http://127.0.0.1:55502"),
                          "carol": Node("http://127.0.0.1:55503")})
        fed.compute("SecureSum", {"alice": 19, "bob": 5, "carol": 61}).result
        # {'samples': 3, 'sum': 85.0}
    """

    def __init__(self, nodes: Union[Mapping[str, Node], Sequence[Node]]) -> None:
        self.nodes: Dict[str, Node] = _nodes(nodes, Node.info)

    @classmethod
    def connect(
        cls,
        urls: Sequence[str],
        tokens: Optional[Sequence[Optional[str]]] = None,
        ca_file: Optional[str] = None,
    ) -> "Federation":
        """A federation of the nodes at ``urls`` (with one token each, if any), each asked
        for its party id."""
        tokens = list(tokens) if tokens is not None else [None] * len(urls)
        if len(tokens) != len(urls):
            raise ValueError("one token per URL")
        return cls([Node(url, token, ca_file) for url, token in zip(urls, tokens)])

    def __enter__(self) -> "Federation":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()

    @property
    def parties(self) -> List[str]:
        return list(self.nodes)

    def compute(
        self,
        microprotocol: str,
        inputs: Mapping[str, Any],
        *,
        parameters: Optional[Mapping[str, Any]] = None,
        parties: Optional[Sequence[str]] = None,
        deadline_s: Optional[int] = None,
        timeout: float = 600.0,
        id: Optional[Union[str, uuid.UUID]] = None,
    ) -> FederatedResult:
        """Submits ``inputs[party]`` at each party's node under one new id, then waits until
        every one has the computation final.

        Args:
            inputs: party → that party's input; the parties in this order are the
                computation's ``parties`` unless ``parties`` is given (a helper of a two-party
                matrix product takes part without input: list it in neither).
            timeout: seconds to wait for the results.

        Returns:
            The computation at every party; ``.result`` is the result (or raises
            :class:`ComputationFailed`).

        Raises:
            ProblemError: a node refused its submission (the others' are cancelled, so
                that nobody waits for the missing party).
            WaitTimeout: some party's computation was not final in time.
        """
        order = list(parties) if parties is not None else list(inputs)
        unknown = [p for p in inputs if p not in self.nodes]
        if unknown:
            raise ValueError(f"no node for {unknown}; this federation has {self.parties}")
        cid = str(id or uuid.uuid4())
        with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
            submitted = {
                party: pool.submit(
                    self.nodes[party].submit,
                    microprotocol,
                    order,
                    inputs[party],
                    id=cid,
                    parameters=parameters,
                    deadline_s=deadline_s,
                )
                for party in inputs
            }
            errors = [f.exception() for f in submitted.values() if f.exception() is not None]
            if errors:
                for party, future in submitted.items():
                    if future.exception() is None:
                        _cancel_quietly(self.nodes[party], cid)
                raise errors[0]  # type: ignore[misc]
            finals = {
                party: pool.submit(self.nodes[party].wait, cid, timeout) for party in inputs
            }
            return FederatedResult(cid, {party: f.result() for party, f in finals.items()})


def _cancel_quietly(node: Node, id: str) -> None:
    try:
        node.cancel(id)
    except FscError:
        pass  # it ended meanwhile (failed already, as the others tell it)


class AsyncFederation:
    """As :class:`Federation`, for asyncio, with :class:`AsyncNode` clients:
    ``await fed.compute(...)``."""

    def __init__(self, nodes: Mapping[str, AsyncNode]) -> None:
        self.nodes: Dict[str, AsyncNode] = dict(nodes)

    async def __aenter__(self) -> "AsyncFederation":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(node.aclose() for node in self.nodes.values()))

    @property
    def parties(self) -> List[str]:
        return list(self.nodes)

    async def compute(
        self,
        microprotocol: str,
        inputs: Mapping[str, Any],
        *,
        parameters: Optional[Mapping[str, Any]] = None,
        parties: Optional[Sequence[str]] = None,
        deadline_s: Optional[int] = None,
        timeout: float = 600.0,
        id: Optional[Union[str, uuid.UUID]] = None,
    ) -> FederatedResult:
        """See :meth:`Federation.compute`."""
        order = list(parties) if parties is not None else list(inputs)
        unknown = [p for p in inputs if p not in self.nodes]
        if unknown:
            raise ValueError(f"no node for {unknown}; this federation has {self.parties}")
        cid = str(id or uuid.uuid4())
        outcomes = await asyncio.gather(
            *(
                self.nodes[party].submit(
                    microprotocol,
                    order,
                    inputs[party],
                    id=cid,
                    parameters=parameters,
                    deadline_s=deadline_s,
                )
                for party in inputs
            ),
            return_exceptions=True,
        )
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            for party, outcome in zip(inputs, outcomes):
                if not isinstance(outcome, BaseException):
                    try:
                        await self.nodes[party].cancel(cid)
                    except FscError:
                        pass
            raise errors[0]
        finals = await asyncio.gather(*(self.nodes[p].wait(cid, timeout) for p in inputs))
        return FederatedResult(cid, dict(zip(inputs, finals)))
