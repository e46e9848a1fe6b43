"""The one engine that runs a command over sites (one site is a fleet of one), its journal, options, view and report."""
