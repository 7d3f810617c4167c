"""The memory this machine has free: the bound every size a file decides is checked against."""

import os

__all__ = ["available_memory"]


def available_memory() -> int | None:
    """Bytes of memory available now (MemAvailable of /proc/meminfo, else the physical
    memory); None when neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
