"""Lambda handlers of fleetguard and the modules they share (plain Python and boto3)."""
