"""Emulators of the external services threadwise speaks to, serving real protocols on loopback."""
