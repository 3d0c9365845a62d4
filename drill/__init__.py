"""``make drill``: an incident-response game day against an embedded AWS emulator (moto's server, in
process, on loopback). It builds a small fleet, feeds Device Defender alerts of every kind through the real
intake, contain and release code, prints a timeline and a summary, and fails when an expectation does not
hold. See ``drill/fleet.py`` for the scenario and ``drill/runner.py`` for how it runs."""
