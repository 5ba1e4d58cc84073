"""Exchange timestamps from the future: checked against the local receive time.

One trade or quote stamped far ahead (a bad clock upstream, a corrupted field) would move
every "newest seen" mark past all later data: trade coverage would skip every later repair
window, and a restart would look for trades newer than the future. A timestamp more than
FUTURE_TOLERANCE_S after `received_at` is refused (counted, kept in `rejected_messages`).
Deribit's frames arrive after their timestamp (median ~0.15 s, worst seen 2.8 s, protocol
notes §11), so the tolerance is for the local clock running behind the exchange's: NTP keeps
it far inside a minute.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FUTURE_TOLERANCE_S = 60.0
FUTURE_TOLERANCE = timedelta(seconds=FUTURE_TOLERANCE_S)
FUTURE_REASON = f"timestamp more than {FUTURE_TOLERANCE_S:.0f} s after received_at"


def future_limit(received_at: datetime) -> datetime:
    """The latest exchange time accepted for something received at `received_at`."""
    return received_at + FUTURE_TOLERANCE
