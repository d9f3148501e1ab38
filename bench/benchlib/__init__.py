"""The benchmark driver's pieces: processes (servers.py), workloads (workloads.py), the
table and chart (report.py). bench/run.py puts them together."""
