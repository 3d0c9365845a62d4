"""fleetguard's CrossGuard rules, one module per domain; ``pack.all_policies`` is what the pack serves.

This file imports nothing: the program loads ``shared_facts`` from this package without pulumi-policy
installed, and importing a submodule runs this file first.
"""
