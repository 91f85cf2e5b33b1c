"""HTMX pages of the workers app (the signals it owns): /alarms/."""
