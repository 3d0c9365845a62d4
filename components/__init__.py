"""Pulumi ComponentResources that make up a fleetguard stack; none of them reads config."""
