"""Error semantics of the federatedsecure API, seen through the unmodified client at every party.
usage: errors.py CASE URL0 URL1 URL2 [UNKNOWN_URL]; prints one JSON line with each party's outcome:
{"outcomes": [{"error": "<client exception text>"} | {"result": ...}, ...], "seconds": s}."""
import json
import sys
import threading
import time
import uuid

import federatedsecure.client
from federatedsecure.client.representation import Representation


def main():
    case, urls = sys.argv[1], sys.argv[2:5]
    unknown = sys.argv[5] if len(sys.argv) > 5 else None
    net = str(uuid.uuid4())
    outcomes = [None] * 3

    def party(i):
        try:
            api = federatedsecure.client.Api(urls[i])
            simon = api.create(protocol="Simon")
            if case == "unknown_microprotocol":
                out = simon.compute(microprotocol="Foo", data=1, network={"nodes": urls, "uuid": net, "myself": i})
            elif case == "wrong_input_type":
                data = "five" if i == 1 else i
                out = simon.compute(microprotocol="SecureSum", data=data, network={"nodes": urls, "uuid": net, "myself": i})
            elif case == "unknown_representation":
                out = api.download(Representation(api, str(uuid.uuid4())))
                outcomes[i] = {"result": out}
                return
            elif case == "unknown_node_url":
                nodes = urls[:2] + [unknown]
                out = simon.compute(microprotocol="SecureSum", data=i, network={"nodes": nodes, "uuid": net, "myself": i})
            elif case == "private_attributes":
                # none of these may be reachable (REFERENCE.md W6); each must raise
                refused = []
                for name in ("tasks", "get_task", "peer_to_peer", "_the_cache"):
                    try:
                        getattr(simon, name)
                    except Exception as exc:
                        refused.append(str(exc).split("\t")[4] if "\t" in str(exc) else str(exc))
                task = simon.create_task(microprotocol="SecureSum", network={"nodes": urls, "myself": i})
                for name in ("accumulator", "microprotocol", "nodes", "parameters"):
                    try:
                        getattr(task, name)
                    except Exception as exc:
                        refused.append(str(exc).split("\t")[4] if "\t" in str(exc) else str(exc))
                outcomes[i] = {"refused": refused}
                return
            else:
                raise SystemExit("unknown case " + case)
            outcomes[i] = {"result": api.download(out)}
        except Exception as exc:
            outcomes[i] = {"error": str(exc)}

    started = time.time()
    threads = [threading.Thread(target=party, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    print(json.dumps({"outcomes": outcomes, "seconds": round(time.time() - started, 3)}))


if __name__ == "__main__":
    main()
