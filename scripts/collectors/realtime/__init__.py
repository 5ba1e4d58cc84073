"""The real-time WebSocket collector (`python -m scripts.ws_tick_collector_multi`): the option
chain, the router, trade continuity and repair, book snapshots; `service` runs the process."""
