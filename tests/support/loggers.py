"""Undoing ``ldirector.daemon.logs.configure`` after a test, so later tests see a plain logger."""

from __future__ import annotations

import logging

from ldirector.core import wording


def restore_ldirector_logger() -> None:
    """Close the handlers configure() added and give the logger back its defaults."""
    logger = logging.getLogger(wording.LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    logger.propagate = True  # configure() turned it off; later tests' caplog needs it
    logger.setLevel(logging.NOTSET)  # and set a level that would let INFO through
