"""Univariate statistics and a contingency table over three parties' data, with the Python
client of fsc's v1 API (`pip install './clients/python[pandas]'`).

Run it against a local trial federation:

    cargo run --release -p fsc -- demo --keep     # alice, bob, carol on 127.0.0.1:55501..55503
    python3 docs/statistics.py

Each party's data stays at its own node; the nodes compute the statistics by secure
multiparty computation and every party gets the same result. (In a real federation each party
runs only its own part: `Node(its_url, token=...)`, `submit(...)` with the id the parties agreed
on, then `wait(id)`; see the README.)

Environment: FSC_NODES (comma-separated API URLs, default the demo's), FSC_TOKENS (one API token
per URL, comma-separated, if the nodes require them), FSC_CA_FILE (a CA for https nodes).
"""

import os

from fsc_client import Federation, Node

URLS = os.environ.get(
    "FSC_NODES", "http://127.0.0.1:55501,http://127.0.0.1:55502,http://127.0.0.1:55503"
).split(",")
TOKENS = [t or None for t in os.environ.get("FSC_TOKENS", "").split(",")] if os.environ.get("FSC_TOKENS") else [None] * len(URLS)
CA_FILE = os.environ.get("FSC_CA_FILE") or None

# Each hospital's HbA1c measurements (%) and, per patient, smoker status and diagnosis.
HBA1C = {
    "alice": [5.4, 6.1, 7.8, 5.9, 6.6],
    "bob": [5.1, 8.2, 6.0],
    "carol": [6.9, 5.6, 7.1, 6.3],
}
PATIENTS = {
    "alice": [["smoker", "diabetic"], ["non-smoker", "healthy"], ["smoker", "healthy"]],
    "bob": [["non-smoker", "diabetic"], ["smoker", "diabetic"]],
    "carol": [["non-smoker", "healthy"], ["non-smoker", "healthy"], ["smoker", "diabetic"]],
}

if __name__ == "__main__":
    # Ask each node who it is: the federation maps party ids to nodes.
    with Federation([Node(url, token, CA_FILE) for url, token in zip(URLS, TOKENS)]) as federation:
        univariate = federation.compute("StatisticsUnivariate", HBA1C)
        stats = univariate.result  # a plain dict, the same at every party
        print(f"HbA1c over {stats['samples']} patients: mean {stats['mean']:.2f}, "
              f"standard deviation {stats['standard_deviation']:.2f}, "
              f"range {stats['minimum']}..{stats['maximum']}")

        table = federation.compute("StatisticsContingency", PATIENTS)
        print(table.result["table"])
        try:
            print(table.to_frame())  # rows × columns of counts, with pandas
            print(univariate.to_frame()[["samples", "mean", "variance", "skewness"]])
        except ImportError:
            print("(install pandas for the tables as DataFrames)")
