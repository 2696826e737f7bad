"""Sub-commands of `qeaims`, one module per group."""
