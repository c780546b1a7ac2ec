"""Speed and memory benchmarks (`make bench`). Each `bench_*.py` module has a `main()`."""
