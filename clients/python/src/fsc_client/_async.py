"""The asynchronous client of one node (asyncio, through httpx.AsyncClient): the same methods
as :class:`fsc_client.Node`, as coroutines."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import httpx

from . import _http
from ._computation import Computation
from ._errors import ProblemError, TransportError, WaitTimeout


class AsyncNode:
    """As :class:`fsc_client.Node`, for asyncio: ``await node.submit(...)``, ``async with``.

    Many computations can be followed at once with one node, e.g.
    ``await asyncio.gather(*(node.wait(id) for id in ids))``.
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
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=_http.headers(token),
            verify=_http.tls_settings(self.url, ca_file, client_cert),
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"AsyncNode({self.url!r})"

    async def __aenter__(self) -> "AsyncNode":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes the node's connections."""
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise TransportError(f"{self.url}{path}: {error!r}") from error

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return _http.answer(await self._request(method, path, **kwargs))

    async def submit(
        self,
        microprotocol: str,
        parties: Sequence[str],
        input: Any,
        *,
        id: Optional[Union[str, uuid.UUID]] = None,
        parameters: Optional[Mapping[str, Any]] = None,
        deadline_s: Optional[int] = None,
    ) -> Computation:
        """See :meth:`fsc_client.Node.submit`."""
        body = _http.submission(microprotocol, parties, input, id, parameters, deadline_s)
        return Computation.from_api(await self._call("POST", "/v1/computations", json=body))

    async def status(self, id: Union[str, uuid.UUID], *, wait: float = 0.0) -> Computation:
        """See :meth:`fsc_client.Node.status`."""
        params = {"wait": wait} if wait > 0 else None
        document = await self._call(
            "GET", f"/v1/computations/{id}", params=params, timeout=self.timeout + wait
        )
        return Computation.from_api(document)

    async def wait(self, id: Union[str, uuid.UUID], timeout: float = 600.0) -> Computation:
        """See :meth:`fsc_client.Node.wait`."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            computation = await self.status(id, wait=min(left, _http.MAX_POLL_S))
            if computation.final:
                return computation
            if left <= 0:
                raise WaitTimeout(computation, timeout)

    async def cancel(self, id: Union[str, uuid.UUID]) -> Computation:
        """See :meth:`fsc_client.Node.cancel`."""
        return Computation.from_api(await self._call("DELETE", f"/v1/computations/{id}"))

    async def computations(
        self, status: Optional[str] = None, *, page_size: int = _http.PAGE
    ) -> AsyncIterator[Computation]:
        """See :meth:`fsc_client.Node.computations` (``async for``)."""
        cursor: Optional[str] = None
        while True:
            page = await self._call(
                "GET", "/v1/computations", params=_http.list_params(status, page_size, cursor)
            )
            for document in page["computations"]:
                yield Computation.from_api(document)
            cursor = page.get("next_cursor")
            if not cursor:
                return

    async def list(
        self, status: Optional[str] = None, *, limit: Optional[int] = None
    ) -> List[Computation]:
        """See :meth:`fsc_client.Node.list`."""
        found: List[Computation] = []
        page = _http.PAGE if limit is None else max(1, min(limit, _http.PAGE))
        async for computation in self.computations(status, page_size=page):
            if limit is not None and len(found) >= limit:
                break
            found.append(computation)
        return found

    async def batch(
        self,
        computations: Iterable[Mapping[str, Any]],
        *,
        chunk_size: int = _http.DEFAULT_CHUNK,
        retry_for: float = 600.0,
    ) -> List[Union[Computation, ProblemError]]:
        """See :meth:`fsc_client.Node.batch`."""
        items = [dict(c) for c in computations]
        results: List[Union[Computation, ProblemError]] = []
        for start in range(0, len(items), max(1, chunk_size)):
            results.extend(await self._batch_chunk(items[start : start + chunk_size], retry_for))
        return results

    async def _batch_chunk(
        self, items: List[Dict[str, Any]], retry_for: float
    ) -> List[Union[Computation, ProblemError]]:
        deadline = time.monotonic() + retry_for
        results: List[Union[Computation, ProblemError, None]] = [None] * len(items)
        pending = list(range(len(items)))
        while True:
            response = await self._request(
                "POST", "/v1/computations/batch", json={"computations": [items[i] for i in pending]}
            )
            if response.status_code in (429, 503) and time.monotonic() < deadline:
                await asyncio.sleep(_http.retry_after(response) or 1.0)
                continue
            pending, wait = _http.take_batch_answer(response, pending, results)
            if not pending or time.monotonic() >= deadline:
                return results  # type: ignore[return-value]
            await asyncio.sleep(wait)

    async def info(self) -> Dict[str, Any]:
        """See :meth:`fsc_client.Node.info`."""
        return dict(await self._call("GET", "/v1/node"))

    async def budget(self) -> Dict[str, Any]:
        """See :meth:`fsc_client.Node.budget`."""
        return dict(await self._call("GET", "/v1/budget"))

    async def proposals(self) -> List[Dict[str, Any]]:
        """See :meth:`fsc_client.Node.proposals`."""
        return [dict(p) for p in (await self._call("GET", "/v1/proposals"))["proposals"]]

    async def decline(self, id: Union[str, uuid.UUID]) -> Computation:
        """See :meth:`fsc_client.Node.decline`."""
        return Computation.from_api(await self._call("POST", f"/v1/proposals/{id}/decline"))

    async def receipt(self, id: Union[str, uuid.UUID]) -> Dict[str, Any]:
        """See :meth:`fsc_client.Node.receipt`."""
        return dict(await self._call("GET", f"/v1/computations/{id}/receipt"))

    async def ready(self) -> bool:
        """See :meth:`fsc_client.Node.ready`."""
        try:
            return (await self._request("GET", "/readyz")).is_success
        except TransportError:
            return False
