"""Times the tutorial's secure sum through the unmodified client: RUNS runs, each with the three
parties' clients in parallel threads and a fresh network uuid, from the start until every party
has downloaded its result. usage: tutorial_timing.py [--floor] RUNS URL0 URL1 URL2
Prints one JSON line: {"runs": [seconds, ...], "sums": [...]}.

--floor times the client alone: the same four requests per party (create, attribute, a call that
returns at once, download) with no computation behind them, i.e. the fastest any server could be."""
import json
import sys
import threading
import time
import uuid

import federatedsecure.client

INPUTS = [19, 5, 61]


def floor_party(api, i):
    simon = api.create(protocol="Simon")
    simon.compute  # the attribute request
    return api.download(api.upload(85.0))


def one_run(urls, floor=False):
    net = str(uuid.uuid4())
    sums = [None] * len(urls)
    barrier = threading.Barrier(len(urls) + 1)

    def party(i):
        api = federatedsecure.client.Api(urls[i])
        barrier.wait()
        if floor:
            sums[i] = floor_party(api, i)
            return
        simon = api.create(protocol="Simon")
        result = simon.compute(microprotocol="SecureSum", data=INPUTS[i],
                               network={"nodes": urls, "uuid": net, "myself": i})
        sums[i] = api.download(result)["result"]["sum"]

    threads = [threading.Thread(target=party, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(120)
    return time.perf_counter() - started, sums


def main():
    floor = sys.argv[1] == "--floor"
    args = sys.argv[2:] if floor else sys.argv[1:]
    runs, urls = int(args[0]), args[1:]
    one_run(urls, floor)  # warm-up
    times, sums = [], []
    for _ in range(runs):
        elapsed, result = one_run(urls, floor)
        times.append(elapsed)
        sums.append(result)
    print(json.dumps({"runs": times, "sums": sums}))


if __name__ == "__main__":
    main()
