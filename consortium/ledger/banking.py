"""Calendar dates and banking days for the UCP 600 rules, from block time only.

Both Shanghai and Hong Kong keep UTC+8 all year (no daylight saving), so a
block's local calendar date is the same in both places: (time_ms + 8 h) as a
date. Banking days come from the `holidays` library, never a hand-made list:
- HK: Mon-Fri except general holidays (the days banks close: the library's
  PUBLIC and OPTIONAL categories for HK; OPTIONAL holds e.g. Good Friday).
  Saturdays are not banking days for examination purposes.
- CN-SH: the mainland working-day calendar, including the weekend days the
  State Council moves into working days (holidays' `is_working_day`).
Every node must run the same `holidays` version (it is pinned through the
package dependencies); a calendar difference would split the state root.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import holidays

from consortium import limits
from consortium.types import Jurisdiction

LOCAL_OFFSET_MS = 8 * 3_600_000  # UTC+8 in both jurisdictions
DAY_MS = 86_400_000


def local_date(time_ms: int) -> dt.date:
    """The calendar date in Shanghai/Hong Kong at block time `time_ms`."""
    days = (time_ms + LOCAL_OFFSET_MS) // DAY_MS
    return dt.date(1970, 1, 1) + dt.timedelta(days=days)


def parse_date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def add_days(text: str, days: int) -> str:
    return (dt.date.fromisoformat(text) + dt.timedelta(days=days)).isoformat()


@lru_cache(maxsize=4)
def _calendar(jurisdiction: Jurisdiction) -> holidays.HolidayBase:
    if jurisdiction == Jurisdiction.HK:
        return holidays.country_holidays("HK", categories=("public", "optional"))
    return holidays.country_holidays("CN", categories=("public",))


def is_banking_day(jurisdiction: Jurisdiction, day: dt.date) -> bool:
    calendar = _calendar(jurisdiction)
    if jurisdiction == Jurisdiction.HK:
        # holidays treats Saturday as an HK working day (six-day labour week);
        # banks' trade-finance desks and the interbank system keep Mon-Fri.
        return day.weekday() < 5 and day not in calendar
    return bool(calendar.is_working_day(day))


def first_banking_day_from(jurisdiction: Jurisdiction, day: dt.date) -> dt.date:
    """`day` itself if banks open, else the next day they do (UCP 600 art. 29(a), 33)."""
    for _ in range(limits.bank_closure_days_max):
        if is_banking_day(jurisdiction, day):
            return day
        day += dt.timedelta(days=1)
    raise AssertionError(f"no banking day within {limits.bank_closure_days_max} days")


def nth_banking_day_after(jurisdiction: Jurisdiction, day: dt.date, n: int) -> dt.date:
    """The n-th banking day following `day` (`day` itself never counts)."""
    assert 0 < n <= 30
    for _ in range(n):
        day = first_banking_day_from(jurisdiction, day + dt.timedelta(days=1))
    return day


def examination_period(jurisdiction: Jurisdiction, presented: dt.date) -> tuple[dt.date, dt.date]:
    """(deemed presentation day, last day to refuse) under UCP 600 art. 14(b).

    A presentation on a day the issuing bank is closed is deemed received on its
    next banking day (art. 33: banks need not accept presentations when closed);
    the bank then has a maximum of five banking days following that day."""
    deemed = first_banking_day_from(jurisdiction, presented)
    return deemed, nth_banking_day_after(jurisdiction, deemed, 5)
