"""What the API and the worker share: settings, logging, Redis keys, the job store, storage.

One copy, imported by both. Nothing here imports Flask, lxml or the conversion engine.
"""
