"""Sector plug-ins that live outside the project's six, for the tests that add a sector."""
