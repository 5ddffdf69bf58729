"""Times the tutorial's secure sum through the unmodified client: RUNS runs, each with the three
parties' clients in parallel threads and a fresh network uuid, from the start until every party
has downloaded its result. usage: tutorial_timing.py [--paired] RUNS URL0 URL1 URL2
Prints one JSON line: {"runs": [seconds, ...], "floor": [seconds, ...], "sums": [...]}.

--paired also times the client alone, one floor run beside each tutorial run (alternating which
goes first): the same four requests per party (create, attribute, a call that returns at once,
download) with no computation behind them, i.e. the fastest any server could be. Paired runs
see the same machine load, so their difference is steadier than two medians taken minutes
apart."""
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
    paired = sys.argv[1] == "--paired"
    args = sys.argv[2:] if paired else sys.argv[1:]
    runs, urls = int(args[0]), args[1:]
    one_run(urls)  # warm-up
    if paired:
        one_run(urls, floor=True)
    times, floors, sums = [], [], []
    for k in range(runs):
        order = ((True, False) if k % 2 else (False, True)) if paired else (False,)
        for floor in order:
            elapsed, result = one_run(urls, floor)
            (floors if floor else times).append(elapsed)
            sums.append(result)
    print(json.dumps({"runs": times, "floor": floors, "sums": sums}))


if __name__ == "__main__":
    main()
