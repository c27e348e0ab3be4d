"""Scaling out on an existing distributed engine (Ray), for users who outgrow one machine.

ray_ingest.py   `qa index PATH --ray [ADDRESS]`: ingestion as a Ray Data pipeline

Nothing here is imported unless asked for: the default path never imports ray, which is an
optional extra (`pip install -e '.[ray]'`).
"""
