"""Stand-ins for the Pulumi engine, which cannot run on build machines: ``mockstack`` runs the program under
``pulumi.runtime.set_mocks`` the way the engine runs it (a preview, then the update), ``analyzer`` boots the
policy pack and speaks its gRPC protocol the way the engine does. Used by ``tools/`` (commands people run),
``tests/`` and ``benchmarks/``; never by the program, the functions or the pack."""
