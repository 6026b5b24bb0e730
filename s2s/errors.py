"""The one exception type the command line turns into a one-line message."""


class S2SError(Exception):
    """A problem the user can fix: bad input, bad config, unwritable output.

    The message names what is wrong and, where it can, the fix. The CLI prints
    it as `s2s: error: <message>` and exits non-zero, without a traceback.
    """
