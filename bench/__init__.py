"""The benchmarks: run each as a module from the repository's root (`python -m bench.run`)."""
