"""`make bench`: the critical path, cold start, memory and size of nat-asg-hook, written to
docs/benchmarks.md. Not a test: nothing here asserts a speed; the numbers go in the document.

- Critical path: moto behind nat_lab.proxy, which adds a fixed latency (100 ms) to every
  request and records each one. One group with N = 1, 10 and 50 private route tables; the release
  binary serving a local Lambda Runtime API (the Lambda path, one process for many events) and run
  as `replay` (one process per event). For each: handler time, dependent round trips (the longest
  chain of requests each starting after the previous ended), requests, mutating calls.
- Cold start: process spawn to its first poll of the Runtime API; the first event after it; peak
  RSS. Beside it, on the same machine in the same run, a Python process that creates a boto3 EC2 and
  Auto Scaling client pair and polls the same API (the usual alternative), as a ratio.
- Sizes: the host binary and the arm64 Lambda zip.
- The fault-injection soak of tests/e2e/test_soak.py, run once more on the release binary, for its counts.

The parts: `measure` (a minimal Lambda Runtime API, the function process, and the measurements:
critical path, cold start, the soak) and `report` (the generated blocks of docs/benchmarks.md, from the measurements).
`python -m nat_lab.bench` runs both (`__main__`).
"""
