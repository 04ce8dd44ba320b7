# Written by `make setup`: the book's kernels run on this machine only, over loopback, so ipykernel's
# "running over TCP without encryption" warning (printed once per executed page) is noise; other messages stay.
import logging


class _QuietLoopback(logging.Filter):
    def filter(self, record):
        return "running over TCP without encryption" not in record.getMessage()


logging.getLogger("IPKernelApp").addFilter(_QuietLoopback())
