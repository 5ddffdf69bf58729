"""Computations as the v1 API describes them, and their results as pandas frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

from ._errors import ComputationFailed, FscError

if TYPE_CHECKING:  # pandas is optional: only to_frame() needs it
    import pandas

#: The statuses a computation ends with.
FINAL = ("succeeded", "failed")


@dataclass(frozen=True)
class Computation:
    """One computation at one node, as ``GET /v1/computations/{id}`` shows it.

    A submission's answer has only ``id`` and ``status``; :meth:`Node.status` and
    :meth:`Node.wait` fill in the rest. ``raw`` is the document exactly as the node sent it.
    """

    id: str
    status: str
    microprotocol: Optional[str] = None
    parties: List[str] = field(default_factory=list)
    parameters: Dict[str, Any] = field(default_factory=dict)
    output: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    created_at: Optional[str] = None
    deadline_at: Optional[str] = None
    finished_at: Optional[str] = None
    #: The parties this node has not heard from yet, while pending or running.
    waiting_for: List[str] = field(default_factory=list)
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, document: Mapping[str, Any]) -> "Computation":
        """A Computation of the API's JSON document (unknown fields are kept in ``raw``)."""
        return cls(
            id=str(document["id"]),
            status=str(document["status"]),
            microprotocol=document.get("microprotocol"),
            parties=list(document.get("parties") or []),
            parameters=dict(document.get("parameters") or {}),
            output=document.get("output"),
            error=document.get("error"),
            created_at=document.get("created_at"),
            deadline_at=document.get("deadline_at"),
            finished_at=document.get("finished_at"),
            waiting_for=list(document.get("waiting_for") or []),
            raw=dict(document),
        )

    @property
    def final(self) -> bool:
        """True once the computation has ``succeeded`` or ``failed``."""
        return self.status in FINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def result(self) -> Dict[str, Any]:
        """The result, a plain dict (e.g. ``{"samples": 3, "sum": 85.0}`` of a SecureSum).

        Raises:
            ComputationFailed: the computation failed (with its code, message and culprit).
            FscError: it is not final yet.
        """
        if self.status == "failed":
            raise ComputationFailed(self.id, self.error or {})
        if self.output is None:
            raise FscError(f"computation {self.id} is {self.status}: no result yet")
        return dict(self.output.get("result") or {})

    @property
    def inputs(self) -> Optional[int]:
        """How many parties gave an input (the output's ``inputs``), once succeeded."""
        return None if self.output is None else self.output.get("inputs")

    def to_dict(self) -> Dict[str, Any]:
        """The computation as the API's JSON document (a copy)."""
        return dict(self.raw) if self.raw else {"id": self.id, "status": self.status}

    def to_frame(self) -> "pandas.DataFrame":
        """The result as a pandas DataFrame (see :func:`result_frame`); needs pandas."""
        return result_frame(self.result)


def result_frame(result: Mapping[str, Any]) -> "pandas.DataFrame":
    """A microprotocol's result as a pandas DataFrame:

    - a contingency table (``table``: ``{row: {column: count}}``): rows × columns of counts;
    - a histogram (``histogram``: ``{value: count}``): one column ``count``, indexed by value;
    - a matrix (``product`` of SecureMatrixMultiplication, ``mle`` of the OLS regression): the
      matrix, rows and columns numbered from 0;
    - a set intersection (``intersection``): one column ``item``;
    - anything else made of scalars (StatisticsUnivariate's 22 statistics, a sum, a median):
      one row, one column per key.

    Raises:
        ImportError: pandas is not installed (``pip install 'fsc-client[pandas]'``).
        TypeError: the result has none of these shapes.
    """
    try:
        import pandas as pd
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_frame() needs pandas: pip install 'fsc-client[pandas]' (or pandas)"
        ) from error
    table = result.get("table")
    if isinstance(table, Mapping):
        columns: List[str] = []
        for cells in table.values():
            columns.extend(c for c in cells if c not in columns)
        frame = pd.DataFrame(
            [[cells.get(c, 0) for c in columns] for cells in table.values()],
            index=pd.Index(list(table), name="row"),
            columns=pd.Index(columns, name="column"),
        )
        return frame
    histogram = result.get("histogram")
    if isinstance(histogram, Mapping):
        return pd.DataFrame(
            {"count": list(histogram.values())}, index=pd.Index(list(histogram), name="value")
        )
    for key in ("product", "mle"):
        matrix = result.get(key)
        if isinstance(matrix, list):
            return pd.DataFrame(matrix)
    intersection = result.get("intersection")
    if isinstance(intersection, list):
        return pd.DataFrame({"item": intersection})
    if all(not isinstance(v, (Mapping, list)) for v in result.values()):
        return pd.DataFrame([dict(result)])
    raise TypeError(f"no table shape for a result with keys {sorted(result)}")
