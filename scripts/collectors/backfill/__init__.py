"""History backfill (`python -m scripts.backfill`): resumable, idempotent, metered (`job`)."""
