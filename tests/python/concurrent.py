"""N simultaneous 3-party secure sums through the unmodified federatedsecure client, each party
of each computation in its own thread. usage: concurrent.py N URL0 URL1 URL2
Prints one JSON line: {"computations": N, "correct": k, "errors": [...], "seconds": s}."""
import json
import sys
import threading
import time
import uuid

import federatedsecure.client


def main():
    n, urls = int(sys.argv[1]), sys.argv[2:]
    outcomes, errors = {}, []
    lock = threading.Lock()

    def party(c, i, net):
        try:
            api = federatedsecure.client.Api(urls[i])
            simon = api.create(protocol="Simon")
            result = simon.compute(microprotocol="SecureSum", data=c * 10 + i,
                                   network={"nodes": urls, "uuid": net, "myself": i})
            with lock:
                outcomes[(c, i)] = api.download(result)["result"]["sum"]
        except Exception as exc:  # the client raises Exception(<log line>)
            with lock:
                errors.append(str(exc)[:200])

    threads = []
    started = time.time()
    for c in range(n):
        net = str(uuid.uuid4())
        threads += [threading.Thread(target=party, args=(c, i, net)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    correct = sum(1 for (c, i), s in outcomes.items() if s == float(c * 30 + 3))
    print(json.dumps({"computations": n, "correct": correct, "parties_done": len(outcomes),
                      "hung": sum(t.is_alive() for t in threads), "errors": errors[:5],
                      "seconds": round(time.time() - started, 3)}))


if __name__ == "__main__":
    main()
