"""Times each of the 13 microprotocols through the unmodified client, on the inputs of one
recorded vector each (vectors/*.json, the original's own test cases): RUNS runs after a warm-up,
each with the parties' clients in parallel threads and a fresh network uuid, from the start until
every party has downloaded its result. The same script runs against fsc and against the original,
so both see the same client, inputs and machine.

usage: protocol_timing.py RUNS VECTORS_DIR URL0 URL1 URL2
Prints one JSON line: {"protocols": [{"microprotocol", "vector", "parties", "times": [seconds],
"result": <party 0's result of the last run>, "error": <text, if a run failed>}]}.
"""
import json
import os
import sys
import threading
import time
import uuid

import federatedsecure.client

VECTORS = [
    "secure_sum_3p_test",
    "minimum_maximum_3p",
    "kth_element_2p_rank1",
    "secure_median_3p_even",
    "statistics_univariate_2p_test",
    "statistics_bivariate_2p_test",
    "statistics_frequency_2p_test",
    "statistics_contingency_2p_test",
    "secure_matrix_multiplication_2p_test",
    "statistics_regression_ols_vertical_2p_test",
    "set_intersection_2p_test",
    "set_intersection_size_2p_test",
    "statistics_contingency_vertical_2p_test",
]
TIMEOUT_S = 120


def one_run(urls, microprotocol, inputs):
    """(seconds, party 0's result) of one computation, or raises the first party's error."""
    net = str(uuid.uuid4())
    outcomes = [None] * len(urls)
    barrier = threading.Barrier(len(urls) + 1)

    def party(i):
        try:
            api = federatedsecure.client.Api(urls[i])
            barrier.wait()
            simon = api.create(protocol="Simon")
            result = simon.compute(microprotocol=microprotocol, data=inputs[i],
                                   network={"nodes": urls, "uuid": net, "myself": i})
            outcomes[i] = {"result": api.download(result)}
        except Exception as exc:  # the client raises plain Exceptions with the HTTP status
            outcomes[i] = {"error": str(exc)}

    threads = [threading.Thread(target=party, args=(i,), daemon=True) for i in range(len(urls))]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join(TIMEOUT_S)
    elapsed = time.perf_counter() - started
    for outcome in outcomes:
        if outcome is None:
            raise RuntimeError(f"no answer within {TIMEOUT_S} s")
        if "error" in outcome:
            raise RuntimeError(outcome["error"])
    return elapsed, outcomes[0]["result"]


def main():
    runs, vectors, urls = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    report = []
    for name in VECTORS:
        with open(os.path.join(vectors, name + ".json")) as f:
            vector = json.load(f)
        parties = vector["parties"]
        entry = {"microprotocol": vector["microprotocol"], "vector": name, "parties": parties, "times": []}
        try:
            one_run(urls[:parties], vector["microprotocol"], vector["inputs"])  # warm-up
            for _ in range(runs):
                elapsed, result = one_run(urls[:parties], vector["microprotocol"], vector["inputs"])
                entry["times"].append(elapsed)
                entry["result"] = result
        except Exception as exc:
            entry["error"] = str(exc)[:500]
        report.append(entry)
    print(json.dumps({"protocols": report}))


if __name__ == "__main__":
    main()
