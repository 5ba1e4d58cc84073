"""The REST pollers (`python -m scripts.collect_realtime`, `scripts.funding_rates_collector`): one
poller per job on a `Schedule`; `service` runs the process, `catalog` lists their instruments."""
