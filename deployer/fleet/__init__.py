"""The one engine that runs a command over sites (one site is a fleet of one), its journal, options, view and report."""

# here, not in options.py or engine.py: both need it, and options.py imports the engine (a cycle)
DEFAULT_FORKS = 10  # real servers are I/O-bound: ten sessions keep a controller's link busy without a storm
