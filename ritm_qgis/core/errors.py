"""The one exception type the engine raises for problems a user can fix.

Its message is a complete sentence that says what is wrong and what to do; the CLI prints it
without a traceback and the QGIS glue turns it into a QgsProcessingException or a message-bar
entry.
"""


class RitmError(Exception):
    """A problem with the user's input or environment, explained in the message."""
