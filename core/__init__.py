"""The foundation every layer stands on: message types, errors, settings, kinds and logging.

`core` imports nothing from the project (import-linter enforces it, see docs/ARCHITECTURE.md), so any
layer may import it and a change above can never break it.
"""
