"""``make drill``: an incident-response game day against an embedded AWS emulator (moto's server, in
process, on loopback). It builds a small fleet, feeds Device Defender alerts of every kind through the real
intake, contain and release code, prints a timeline and a summary, and fails when an expectation does not
hold. ``drill/scenario.py`` holds the fleet, the alerts and the expectations; ``drill/runner.py`` runs
them, with the emulator (``emulator.py``), the handlers' configuration (``handlers.py``), the queue consumer
(``consumer.py``), log capture (``logs.py``), the checks (``checks.py``) and the report (``report.py``)."""
