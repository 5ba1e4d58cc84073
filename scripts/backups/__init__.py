"""Backups: dumps with their snapshot's manifest, restore, the restore test, retention, disk."""
