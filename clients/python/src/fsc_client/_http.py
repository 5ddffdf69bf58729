"""What the synchronous and the asynchronous node share: settings, request bodies and how
answers become values or exceptions. No I/O here."""

from __future__ import annotations

import ssl
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import httpx

from ._computation import Computation
from ._errors import ProblemError

#: Items per batch request (the node takes at most 10,000).
DEFAULT_CHUNK = 1000
#: Longest long poll of one request; a longer wait takes several.
MAX_POLL_S = 60.0
#: Page size when following ``next_cursor`` (the node's maximum).
PAGE = 1000


def tls_settings(
    url: str, ca_file: Optional[str], client_cert: Optional[str]
) -> Union[bool, ssl.SSLContext]:
    """httpx's ``verify``: the system's CAs, plus ``ca_file`` if given, and a client
    certificate (one PEM file with the certificate and its key) for nodes that require one."""
    if ca_file is None and client_cert is None:
        return True
    context = ssl.create_default_context()
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)
    if client_cert is not None:
        context.load_cert_chain(client_cert)
    return context


def headers(token: Optional[str]) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def submission(
    microprotocol: str,
    parties: Sequence[str],
    input: Any,
    id: Optional[Union[str, uuid.UUID]] = None,
    parameters: Optional[Mapping[str, Any]] = None,
    deadline_s: Optional[int] = None,
) -> Dict[str, Any]:
    """The body of ``POST /v1/computations`` (also one item of a batch)."""
    body: Dict[str, Any] = {
        "id": str(id) if id is not None else str(uuid.uuid4()),
        "microprotocol": microprotocol,
        "parties": list(parties),
        "parameters": dict(parameters or {}),
        "input": input,
    }
    if deadline_s is not None:
        body["deadline_s"] = deadline_s
    return body


def retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def answer(response: httpx.Response) -> Any:
    """The JSON body of a 2xx answer; any other answer raises its :class:`ProblemError`."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.is_success:
        return body
    url = str(response.request.url.copy_with(query=None)) if response.request else ""
    if isinstance(body, Mapping):
        return_error = ProblemError.from_problem(body, url=url, retry_after=retry_after(response))
        if not return_error.status:
            return_error.status = response.status_code
        raise return_error
    raise ProblemError(
        status=response.status_code,
        code=None,
        detail=response.text or response.reason_phrase,
        problem={"status": response.status_code, "detail": response.text},
        retry_after=retry_after(response),
        url=url,
    )


def item_result(item: Mapping[str, Any], url: str) -> Union[Computation, ProblemError]:
    """One item of a batch answer: the accepted computation, or the item's problem."""
    if "error" in item and isinstance(item["error"], Mapping):
        return ProblemError.from_problem(item["error"], url=url)
    return Computation.from_api(item)


def take_batch_answer(
    response: httpx.Response,
    pending: List[int],
    results: List[Union[Computation, ProblemError, None]],
) -> Tuple[List[int], float]:
    """Fills ``results`` at the positions ``pending`` from a batch answer (raising the
    request's own :class:`ProblemError`, if it failed as a whole). Returns the positions
    refused for capacity (429), worth sending again, and how long to wait before: the
    answer's ``Retry-After``, else the items' ``retry_after_s``, else 1 s."""
    url = str(response.request.url)
    for i, item in zip(pending, answer(response)["results"]):
        results[i] = item_result(item, url)
    again = [i for i in pending if isinstance(results[i], ProblemError) and results[i].status == 429]  # type: ignore[union-attr]
    wait = retry_after(response) or max(
        (results[i].retry_after or 1.0 for i in again),  # type: ignore[union-attr]
        default=1.0,
    )
    return again, wait


def list_params(status: Optional[str], limit: int, cursor: Optional[str]) -> Dict[str, Any]:
    params: Dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status"] = status
    if cursor is not None:
        params["cursor"] = cursor
    return params
