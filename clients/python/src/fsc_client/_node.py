"""The synchronous client of one node."""

from __future__ import annotations

import time
import uuid
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import httpx

from . import _http
from ._computation import Computation
from ._errors import ProblemError, TransportError, WaitTimeout


class Node:
    """A client of one fsc node's v1 API.

    Args:
        url: the node's API base URL, e.g. ``http://127.0.0.1:55501`` or
            ``https://alice.example.org``.
        token: the API client's token (``fsc client add`` prints one), sent as
            ``Authorization: Bearer``; needed when the node lists API clients.
        ca_file: a PEM file of CA certificates to trust besides the system's (e.g. the
            ``ca.crt`` of ``fsc federation init --tls``).
        client_cert: a PEM file with a client certificate and its key, for a node that requires
            one (its ``tls_client_ca``).
        timeout: seconds for connecting and for each request (long polls get their wait on top).

    Use it as a context manager, or call :meth:`close`, to release its connections.
    """

    def __init__(
        self,
        url: str,
        token: Optional[str] = None,
        ca_file: Optional[str] = None,
        *,
        client_cert: Optional[str] = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(
            base_url=self.url,
            headers=_http.headers(token),
            verify=_http.tls_settings(self.url, ca_file, client_cert),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"Node({self.url!r})"

    def __enter__(self) -> "Node":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the node's connections."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise TransportError(f"{self.url}{path}: {error!r}") from error

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _http.answer(self._request(method, path, **kwargs))

    def submit(
        self,
        microprotocol: str,
        parties: Sequence[str],
        input: Any,
        *,
        id: Optional[Union[str, uuid.UUID]] = None,
        parameters: Optional[Mapping[str, Any]] = None,
        deadline_s: Optional[int] = None,
    ) -> Computation:
        """Submits this party's ``input`` to a computation (``POST /v1/computations``).

        Every party submits the same ``id``, ``microprotocol``, ``parties`` (in the same order)
        and ``parameters``, each at its own node with its own input. Without ``id`` a new one
        is drawn: pass it on to the other parties (``computation.id``). Submitting the same
        computation again is harmless: the node answers with its status, the first input
        stands.

        Returns:
            The computation with its ``id`` and ``status`` (usually ``pending`` or ``running``).

        Raises:
            ProblemError: the node refused it (``invalid_input``, ``unknown_microprotocol``,
                ``conflict``, ``too_many_computations`` with ``retry_after``, ...).
        """
        body = _http.submission(microprotocol, parties, input, id, parameters, deadline_s)
        return Computation.from_api(self._call("POST", "/v1/computations", json=body))

    def status(self, id: Union[str, uuid.UUID], *, wait: float = 0.0) -> Computation:
        """The computation as it is now (``GET /v1/computations/{id}``); with ``wait`` (at most
        300 s), long-polls until it is final or the time is up."""
        params = {"wait": wait} if wait > 0 else None
        return Computation.from_api(
            self._call(
                "GET", f"/v1/computations/{id}", params=params, timeout=self.timeout + wait
            )
        )

    def wait(self, id: Union[str, uuid.UUID], timeout: float = 600.0) -> Computation:
        """Waits until the computation is final and returns it, succeeded or failed (its
        :attr:`Computation.result` raises :class:`ComputationFailed` for a failed one).

        Raises:
            WaitTimeout: it was not final within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            computation = self.status(id, wait=min(left, _http.MAX_POLL_S))
            if computation.final:
                return computation
            if left <= 0:
                raise WaitTimeout(computation, timeout)

    def cancel(self, id: Union[str, uuid.UUID]) -> Computation:
        """Cancels a pending or running computation: it fails here with ``cancelled`` and at
        every other party (``DELETE /v1/computations/{id}``). Raises :class:`ProblemError`
        (409) for one that has ended otherwise."""
        return Computation.from_api(self._call("DELETE", f"/v1/computations/{id}"))

    def computations(
        self, status: Optional[str] = None, *, page_size: int = _http.PAGE
    ) -> Iterator[Computation]:
        """This client's computations (an admin client's: all), newest first, following the
        node's pages (``next_cursor``) lazily; ``status`` filters (``pending``, ``running``,
        ``succeeded``, ``failed``)."""
        cursor: Optional[str] = None
        while True:
            page = self._call(
                "GET", "/v1/computations", params=_http.list_params(status, page_size, cursor)
            )
            for document in page["computations"]:
                yield Computation.from_api(document)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def list(self, status: Optional[str] = None, *, limit: Optional[int] = None) -> List[Computation]:
        """Every computation :meth:`computations` yields (all pages), or the newest ``limit``."""
        found: List[Computation] = []
        page = _http.PAGE if limit is None else max(1, min(limit, _http.PAGE))
        for computation in self.computations(status, page_size=page):
            if limit is not None and len(found) >= limit:
                break
            found.append(computation)
        return found

    def batch(
        self,
        computations: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int = _http.DEFAULT_CHUNK,
        retry_for: float = 600.0,
    ) -> List[Union[Computation, ProblemError]]:
        """Submits many computations (``POST /v1/computations/batch``), ``chunk_size`` per
        request. Items the node refuses for capacity (429, ``too_many_computations``) are sent
        again after the node's ``Retry-After``, for up to ``retry_for`` seconds.

        Each item is a submission's body: ``{"id", "microprotocol", "parties", "parameters",
        "input", "deadline_s"}`` (:func:`fsc_client.submission` builds one).

        Returns:
            One entry per item, in order: the accepted :class:`Computation` (``id``, ``status``)
            or the item's :class:`ProblemError` (it is returned, not raised).
        """
        items = [dict(c) for c in computations]
        results: List[Union[Computation, ProblemError]] = []
        for start in range(0, len(items), max(1, chunk_size)):
            results.extend(self._batch_chunk(items[start : start + chunk_size], retry_for))
        return results

    def _batch_chunk(
        self, items: List[Dict[str, Any]], retry_for: float
    ) -> List[Union[Computation, ProblemError]]:
        deadline = time.monotonic() + retry_for
        results: List[Union[Computation, ProblemError, None]] = [None] * len(items)
        pending = list(range(len(items)))
        while True:
            response = self._request(
                "POST", "/v1/computations/batch", json={"computations": [items[i] for i in pending]}
            )
            if response.status_code in (429, 503) and time.monotonic() < deadline:
                time.sleep(_http.retry_after(response) or 1.0)
                continue
            pending, wait = _http.take_batch_answer(response, pending, results)
            if not pending or time.monotonic() >= deadline:
                return results  # type: ignore[return-value]
            time.sleep(wait)

    def info(self) -> Dict[str, Any]:
        """The node (``GET /v1/node``): its party ``id``, version, microprotocols, public keys
        and peers."""
        return dict(self._call("GET", "/v1/node"))

    def budget(self) -> Dict[str, Any]:
        """The privacy budget (``GET /v1/budget``): what this client (an admin client: every
        client and the node) spent in the policy's period, the caps and what remains."""
        return dict(self._call("GET", "/v1/budget"))

    def proposals(self) -> List[Dict[str, Any]]:
        """The computations other parties proposed to this node that no client here has
        submitted (``GET /v1/proposals``): each with its ``id``, ``microprotocol``, ``parties``,
        ``parameters``, ``proposer``, ``deadline_at``, ``joined`` and ``waiting_for``; never an
        input. Join one by submitting under its ``id``, or :meth:`decline` it."""
        return [dict(p) for p in self._call("GET", "/v1/proposals")["proposals"]]

    def decline(self, id: Union[str, uuid.UUID]) -> Computation:
        """Declines a proposal (``POST /v1/proposals/{id}/decline``): the computation fails
        here and at every other party with ``declined``, naming this party. Raises
        :class:`ProblemError` (404 no such proposal, 409 already submitted here: cancel it)."""
        return Computation.from_api(self._call("POST", f"/v1/proposals/{id}/decline"))

    def receipt(self, id: Union[str, uuid.UUID]) -> Dict[str, Any]:
        """The receipt of an ended computation (``GET /v1/computations/{id}/receipt``): this
        node's statement and every party's signature (``signed``, ``missing`` or
        ``disagreeing``), ``complete`` once all signed the same; ``fsc audit verify-receipt``
        checks a saved one offline. Raises :class:`ProblemError` (409 while it runs)."""
        return dict(self._call("GET", f"/v1/computations/{id}/receipt"))

    def ready(self) -> bool:
        """Whether the node is ready (``GET /readyz``: store readable, broker connected)."""
        try:
            return self._request("GET", "/readyz").is_success
        except TransportError:
            return False
