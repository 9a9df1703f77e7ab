"""Jobs the benchmarks enqueue; importable by the platform's workers (cwd is the repository)."""


def noop() -> None:
    """The raw queue baseline: all the cost is rq's and the worker class's."""
