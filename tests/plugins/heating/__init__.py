"""A district-heating network as a seventh sector, packaged the way a utility would ship its own.

Nothing in the project names it: the test that uses it declares it through ``QEAIMS_SECTOR_PLUGINS``
(``tests.plugins.heating.plugin:PLUGIN``), and the registry, the deploy, the oracles, the quorum and
the controller's response dispatcher find it there (`core.sectors`, `sectors.plugin`).
"""
