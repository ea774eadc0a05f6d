"""Posts one signed body many times at once from this process (run several of these for several processes).

    python -m tests.reliability.blast URL BODY_FILE SIGNATURE THREADS START_AT_EPOCH

Prints a JSON list of [status, seconds] (status 0 for a transport error).
"""

import json
import sys
import threading
import time

import httpx


def main() -> None:
    url, body_file, signature, threads, start_at = sys.argv[1:6]
    body = open(body_file, "rb").read()  # noqa: PTH123, SIM115
    results: list = []
    guard = threading.Lock()

    def post() -> None:
        time.sleep(max(0.0, float(start_at) - time.time()))
        started = time.perf_counter()
        try:
            status = httpx.post(
                url,
                content=body,
                headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
                timeout=60,
            ).status_code
        except httpx.HTTPError:
            status = 0
        with guard:
            results.append([status, round(time.perf_counter() - started, 4)])

    workers = [threading.Thread(target=post) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps(results))  # noqa: T201


if __name__ == "__main__":
    main()
