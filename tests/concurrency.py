"""Running the same code in several threads at once, for the races the database must settle (PostgreSQL tests)."""

import threading

from django.db import connections


def at_once(count: int, target) -> list:
    """Runs `target(i)` for i in range(count), each in its own thread with its own database connection, all released
    together by a barrier. Returns the results in order; an exception raised by a thread is returned in its place,
    for the caller's assertions to surface."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = target(i)
        except Exception as exc:  # surfaced by the caller's assertions
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results
