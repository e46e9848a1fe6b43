"""`deployer scan`: which hotfixes of a catalogue each site has (observe.py reads, judge.py judges)."""
