"""The exceptions of fsc_client: every one derives from :class:`FscError`."""

from __future__ import annotations

from typing import Any, Mapping, Optional


class FscError(Exception):
    """Anything that went wrong talking to an fsc node."""


class TransportError(FscError):
    """No answer: the connection, DNS or TLS failed, or the node did not answer in time."""


class ProblemError(FscError):
    """The node answered with an error: its problem document (RFC 9457).

    Attributes:
        status: the HTTP status (e.g. 400, 404, 409, 429, 501).
        code: the machine-readable code (``invalid_input``, ``unknown_microprotocol``,
            ``too_many_computations``, ...; ``None`` if the answer was not a problem document).
        detail: the human-readable explanation.
        problem: the whole problem document, as the node sent it.
        retry_after: seconds to wait before sending the same request again, when the node said
            so (``Retry-After``, ``retry_after_s``); ``None`` otherwise.
        url: the URL of the request.
    """

    def __init__(
        self,
        status: int,
        code: Optional[str],
        detail: str,
        problem: Mapping[str, Any],
        retry_after: Optional[float] = None,
        url: str = "",
    ) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = dict(problem)
        self.retry_after = retry_after
        self.url = url
        where = f"{url}: " if url else ""
        super().__init__(f"{where}{status} {code or 'error'}: {detail}")

    @classmethod
    def from_problem(
        cls, problem: Mapping[str, Any], url: str = "", retry_after: Optional[float] = None
    ) -> "ProblemError":
        """A ProblemError of a problem document (e.g. one item of a batch answer)."""
        status = problem.get("status")
        seconds = problem.get("retry_after_s", retry_after)
        return cls(
            status=int(status) if isinstance(status, (int, float)) else 0,
            code=problem.get("code") if isinstance(problem.get("code"), str) else None,
            detail=str(problem.get("detail", "")),
            problem=problem,
            retry_after=float(seconds) if isinstance(seconds, (int, float)) else None,
            url=url,
        )


class ComputationFailed(FscError):
    """A computation ended ``failed``; raised when its result is asked for.

    Attributes:
        id: the computation's id.
        code: why (``invalid_input``, ``deadline_exceeded``, ``cancelled``, ``aborted``, ...).
        message: the node's explanation.
        party: the party that caused the failure, if another than the one asked.
        error: the computation's whole ``error`` object.
    """

    def __init__(self, id: str, error: Mapping[str, Any]) -> None:
        self.id = id
        self.error = dict(error)
        self.code = error.get("code")
        self.message = error.get("message")
        self.party = error.get("party")
        culprit = f" (caused by {self.party})" if self.party else ""
        super().__init__(f"computation {id} failed{culprit}: {self.code}: {self.message}")


class WaitTimeout(FscError, TimeoutError):
    """A computation was not final when the time to wait for it ran out.

    Attributes:
        computation: the computation as last seen (status ``pending`` or ``running``).
    """

    def __init__(self, computation: Any, seconds: float) -> None:
        self.computation = computation
        super().__init__(
            f"computation {computation.id} is still {computation.status} after {seconds:g} s"
        )
