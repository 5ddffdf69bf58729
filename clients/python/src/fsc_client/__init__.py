"""fsc-client: the Python client of an fsc node's native v1 API.

fsc runs Federated Secure Computing over NATS: each organisation runs a node, clients send
their input only to their own node, and the nodes compute joint statistics by secure
multiparty computation. This package talks to a node's ``/v1`` API:

- :class:`Node` (and :class:`AsyncNode` for asyncio): submit, status, wait, cancel, list,
  batch, info, ready;
- :class:`Federation` (and :class:`AsyncFederation`): one computation at several parties'
  nodes at once, for local trials and notebooks;
- :class:`Computation`: a computation as the node shows it, its ``result`` a plain dict and
  ``to_frame()`` a pandas DataFrame of tables and matrices (``pip install 'fsc-client[pandas]'``);
- errors as exceptions: :class:`ProblemError` carries the node's problem document (``status``,
  ``code``, ``detail``), :class:`ComputationFailed` a failed computation's reason,
  :class:`TransportError` a node that did not answer, :class:`WaitTimeout` a wait that ran out.
"""

from ._async import AsyncNode
from ._computation import Computation, result_frame
from ._errors import ComputationFailed, FscError, ProblemError, TransportError, WaitTimeout
from ._federation import AsyncFederation, FederatedResult, Federation
from ._http import submission
from ._node import Node

__version__ = "0.1.0"

__all__ = [
    "AsyncFederation",
    "AsyncNode",
    "Computation",
    "ComputationFailed",
    "FederatedResult",
    "Federation",
    "FscError",
    "Node",
    "ProblemError",
    "TransportError",
    "WaitTimeout",
    "result_frame",
    "submission",
    "__version__",
]
