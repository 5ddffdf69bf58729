"""The tutorial's secure sum, for the unmodified federatedsecure client (pip install
federatedsecure-client), against three fsc nodes.

1. start three nodes, e.g. `fsc demo --keep` (it serves them on the URLs below)
2. run this script three times, at once, with the arguments 0, 1 and 2:
       python secure_sum.py 0 & python secure_sum.py 1 & python secure_sum.py 2
   each prints {'inputs': 3, 'result': {'samples': 3, 'sum': 85.0}}

FSC_NODES (comma-separated URLs) overrides the node URLs.
"""

import os
import sys

import federatedsecure.client

NODES = os.environ.get("FSC_NODES", "http://127.0.0.1:55501,http://127.0.0.1:55502,http://127.0.0.1:55503").split(",")
NETWORK_UUID = "5b3f2a6e-1c0d-4e8a-9f27-0d6c4b8e7a19"  # names this virtual network; the same for all parties
SECRETS = [19, 5, 61]  # each party knows only its own

if __name__ == "__main__":
    me = int(sys.argv[1])  # 0, 1 or 2
    network = {"nodes": NODES, "uuid": NETWORK_UUID, "myself": me}

    api = federatedsecure.client.Api(NODES[me])
    simon = api.create(protocol="Simon")
    result = simon.compute(microprotocol="SecureSum", data=SECRETS[me], network=network)
    print(api.download(result))
