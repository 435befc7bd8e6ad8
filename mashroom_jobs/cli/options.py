"""What the commands share: their errors, the parser's class and action, and the
checks of flag values (plain ASCII numbers within bounds, tokens, store locations)."""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn


class UsageFailure(Exception):
    """A user error: printed on stderr as one line, exit status 2."""


class CommandFailure(Exception):
    """The command could not do what it was asked: printed on stderr as one line, exit 1."""


# --- the parser ---------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, as the commands' own errors are."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


class Once(argparse.Action):
    """Store an option's value, and refuse it a second time.

    argparse keeps the last of ``--config a.py --config b.py`` silently; which file the user
    meant is a guess, so a repeated option is a usage error instead.
    """

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        given: dict[str, Any] = namespace.__dict__.setdefault("_given", {})
        if self.dest in given:
            raise argparse.ArgumentError(
                self, f"given twice ({str(given[self.dest])!r}, then {str(values)!r}); "
                      f"give it once"
            )
        given[self.dest] = values
        setattr(namespace, self.dest, values)


# int() and float() read '٣' and '３' as 3 and ignore '_' and surrounding blanks; a flag's
# number is plain ASCII, so that what the user typed is what the command uses
_WHOLE = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
#: more fire times than this take seconds to list; a typo like -n 50000000 would look like a hang
MAX_FIRE_TIMES = 10_000
#: the longest --shutdown-timeout; threads cannot wait much longer than 2**63 ns anyway
MAX_SHUTDOWN_SECONDS = 86_400
#: the most runs `history` lists, and the most `store prune --keep-runs` keeps per job
MAX_RUNS = 1_000_000
#: the longest `store prune --keep-days`: about 100 years
MAX_DAYS = 36_500


def fire_count(text: str) -> int:
    if _WHOLE.fullmatch(text) and 1 <= int(text) <= MAX_FIRE_TIMES:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a whole number from 1 to {MAX_FIRE_TIMES}, got {text!r}"
    )


def port_number(text: str) -> int:
    if _WHOLE.fullmatch(text) and len(text) <= 5 and int(text) <= 65535:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a port number from 1 to 65535 (or 0: any free port), got {text!r}"
    )


#: Voila's own default port
DASHBOARD_PORT = 8866
#: characters a token may have: it is part of the page's address, unescaped
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,256}")


def token_text(text: str) -> str:
    if _TOKEN.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"expected 8 to 256 letters, digits or the characters . _ ~ -, got {text!r} (the "
        f"dashboard's buttons steer the jobs: it always asks for a token)"
    )


def seconds(text: str) -> float:
    # not float() alone: it also takes 'nan', 'inf' and '1e400'
    if _DECIMAL.fullmatch(text) and float(text) <= MAX_SHUTDOWN_SECONDS:
        return float(text)
    raise argparse.ArgumentTypeError(
        f"expected a number of seconds from 0 to {MAX_SHUTDOWN_SECONDS} such as 10 or 2.5, "
        f"got {text!r}"
    )


def run_count(text: str) -> int:
    if _WHOLE.fullmatch(text) and 1 <= int(text) <= MAX_RUNS:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_RUNS:,}, "
                                     f"got {text!r}")


def days(text: str) -> float:
    if _DECIMAL.fullmatch(text) and 0 < float(text) <= MAX_DAYS:
        return float(text)
    raise argparse.ArgumentTypeError(f"expected a number of days above 0 and at most "
                                     f"{MAX_DAYS:,} such as 30 or 0.5, got {text!r}")


def store_flag(text: str) -> str | None:
    """``--store PATH``, a ``sqlite:///PATH`` URL, or ``none`` (runs kept in memory)."""
    if text.lower() == "none":
        return None
    from ..store import store_location

    try:
        store_location(text, none="none")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def store_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", action=Once, type=store_flag, metavar="PATH",
                        help="the job store (a file or sqlite:///PATH; default: the one the "
                             "kernels and `mashroom-jobs run` use)")
