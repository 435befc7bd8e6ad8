"""Cron expressions: parsing with precise errors, next fire times, DST rules.

The dialect is the one of the Mashroom background-jobs plugin (node-schedule):
five fields ``minute hour day-of-month month day-of-week``, or six with the
*seconds first*, plus ``L``, ``W``, ``#`` and Jenkins' ``H``. Everything is ours:
parsing (:mod:`.fields`, :mod:`.parsing`), the next wall-clock time over the field
sets (:mod:`.days`, :mod:`.walls`), and the mapping of wall-clock times to instants
with Debian cron's (cronie's) daylight-saving rules (:mod:`.dst`):

* spring forward: every fire time inside the gap becomes one fire at the first
  instant after the gap;
* fall back: a job fires again in the repeated hour only if its seconds (six
  fields), minute or hour field is an interval (``*``, ``*/n``, ``a/n``, ``H/n``);
  fixed-time jobs fire once, in the first pass.

croniter, which computed the wall-clock times before, is the reference the tests
compare this package with.
"""

from .describing import describe
from .parsing import MACROS
from .schedule import EARLIEST_START, CronSchedule, shared_schedule
from .zones import local_zone, resolve_zone, zone_name

__all__ = [
    "EARLIEST_START",
    "MACROS",
    "CronSchedule",
    "describe",
    "local_zone",
    "resolve_zone",
    "shared_schedule",
    "zone_name",
]
