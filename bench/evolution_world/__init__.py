"""The evolution benchmark's world, candidate sources, engines and report (bench/evolution.py)."""
