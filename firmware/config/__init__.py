"""The configuration's rules: every section's schema and validation, the settings, the
document they make up. Pure: no I/O, no database (firmware.store keeps it)."""
