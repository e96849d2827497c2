"""Realistic demo data for the landing folder: product events and user profiles.

Writes the two feeds of ``docs/spec/events.md`` (see docs/generator.md):

* ``OUT/events/date=YYYY-MM-DD/events-YYYY-MM-DD.jsonl`` (every 3rd day ``.jsonl.gz``),
* ``OUT/users/profiles-initial.jsonl`` and monthly ``OUT/users/updates-YYYY-MM.csv``.

The simulation runs day by day and keeps a few numbers per user, so memory is
bounded by the number of users (plus one day of output), never by the number of
events. It uses the standard library only and one seeded ``random.Random``, so
the same arguments always give byte-identical files.
"""
from __future__ import annotations

import argparse
import bisect
import csv
import datetime
import gzip
import hashlib
import io
import json
import math
import os
import random
import sys
from itertools import accumulate

# ---------------------------------------------------------------------------
# Knobs. Probabilities are per event, per session or per user-day as named.
# ---------------------------------------------------------------------------
DEFAULT_END = datetime.date(2026, 1, 1)  # default range ends the day before this
GROWTH = 3.0            # daily signups at the end of the range / at its start
ONE_AND_DONE = 0.30     # extra churn on the day after the first day
WEEKDAY_FACTOR = (1.0, 1.02, 1.0, 0.98, 0.92, 0.70, 0.76)  # Monday..Sunday
RESURRECT_DORMANT = 0.012   # per day: a churned user comes back
RESURRECT_UNINSTALLED = 0.004
UNINSTALL_ON_CHURN = 0.45   # churning app users that also uninstall
P_LATE = 0.002          # event held back and delivered in a later day's file
P_DUPLICATE = 0.003     # event line written twice
P_PROFILE_UPDATE = 0.012    # per active user-day
P_STALE_UPDATE = 0.25       # an update is followed by an out-of-order older one
P_FAILED_PAYMENT = 0.05
P_NO_SESSION_ID = 0.10      # users whose app sends no session_id
P_PROFILE_ONLY = 0.02       # registered users that never produce an event
P_NO_PROFILE = 0.085        # app users that never sign up (about 5 % of all)
P_PRE_REGISTERED = 0.06     # app users registered days before their first event
P_LOYALTY_MEMBER = 0.70

M64 = (1 << 64) - 1
DAY = 86400
MAX_SESSION = 3000      # seconds; longer than any session the model produces
LATEST_START = DAY - 1200   # sessions start before 23:40 UTC and may run past midnight

# code, weight, UTC offset in minutes (standard time), DST rule, currency, cities
COUNTRIES = (
    ("DE", 16, 60, "eu", "EUR", ("Berlin", "Hamburg", "München", "Köln", "Frankfurt")),
    ("FR", 10, 60, "eu", "EUR", ("Paris", "Lyon", "Marseille", "Toulouse")),
    ("GB", 10, 0, "eu", "GBP", ("London", "Manchester", "Birmingham", "Edinburgh")),
    ("ES", 7, 60, "eu", "EUR", ("Madrid", "Barcelona", "Sevilla", "València")),
    ("IT", 6, 60, "eu", "EUR", ("Roma", "Milano", "Napoli", "Torino")),
    ("NL", 4, 60, "eu", "EUR", ("Amsterdam", "Rotterdam", "Utrecht")),
    ("PL", 4, 60, "eu", "PLN", ("Warszawa", "Kraków", "Wrocław", "Gdańsk")),
    ("US", 18, -300, "us", "USD", ("New York", "Chicago", "Boston", "Atlanta")),
    ("CA", 3, -300, "us", "CAD", ("Toronto", "Montréal", "Ottawa")),
    ("BR", 5, -180, None, "BRL", ("São Paulo", "Rio de Janeiro", "Belo Horizonte")),
    ("MX", 3, -360, None, "MXN", ("Ciudad de México", "Guadalajara", "Monterrey")),
    ("IN", 10, 330, None, "INR", ("Mumbai", "Bengaluru", "Delhi", "Pune")),
    ("JP", 2, 540, None, "JPY", ("Tokyo", "Osaka")),
    ("AU", 2, 600, None, "AUD", ("Brisbane", "Sydney", "Melbourne")),
)
FX = {"EUR": 1.0, "GBP": 0.85, "PLN": 4.3, "USD": 1.1, "CAD": 1.5, "BRL": 6.0,
      "MXN": 20.0, "INR": 92.0, "JPY": 165.0, "AUD": 1.65}

# device, weight, (os, weight)..., funnel: P(cart | shopping session),
# P(checkout | cart), P(purchase | checkout). Mobile converts worst, desktop best.
DEVICES = (
    ("mobile", 50, (("android", 55), ("ios", 45)), (0.30, 0.45, 0.62)),
    ("web", 22, (("windows", 55), ("macos", 30), ("linux", 5), ("chromeos", 10)), (0.28, 0.62, 0.78)),
    ("desktop", 16, (("windows", 60), ("macos", 35), ("linux", 5)), (0.28, 0.72, 0.85)),
    ("tablet", 12, (("ipados", 60), ("android", 40)), (0.30, 0.55, 0.72)),
)
APP_DEVICES = (0, 3)  # indexes of devices that install an app

GENDERS = (  # normalised category, weight, free-text variants as users type them
    ("female", 46, ("F", "f", "female", "Female", "FEMALE", "woman", "w")),
    ("male", 46, ("M", "m", "male", "Male", "MALE", "man")),
    ("other", 3, ("non-binary", "nb", "NB", "nonbinary", "other", "x", "diverse")),
    ("unknown", 5, ("", "", "prefer not to say", "?")),
)
CHANNELS = (("organic", 30), ("google_ads", 20), ("facebook", 12), ("instagram", 8),
            ("tiktok", 6), ("referral", 10), ("email", 6), ("partner", 8))
CHANNEL_REFERRER = {"organic": "direct", "google_ads": "google", "facebook": "facebook",
                    "instagram": "instagram", "tiktok": "tiktok", "referral": "referral",
                    "email": "email", "partner": "partner"}
REFERRERS = (("direct", 40), ("google", 18), ("push", 12), ("email", 8), ("facebook", 7),
             ("instagram", 5), ("tiktok", 4), ("partner", 3), ("", 3))
PAGES = (("/", 8), ("/home", 18), ("/catalog", 14), ("/courses", 12), ("/search", 10),
         ("/cart", 5), ("/profile", 6), ("/rewards", 5), ("/orders", 4), ("/settings", 3),
         ("/help", 2), ("/notifications", 4), ("/wishlist", 3), ("/my-learning", 6))
PRODUCT_CATEGORIES = ("electronics", "books", "fashion", "home", "sports", "toys", "beauty", "stationery")
COURSE_CATEGORIES = ("programming", "data", "design", "marketing", "languages", "finance", "music",
                     "photography")
N_PRODUCTS, N_COURSES = 400, 60
REWARDS = ((100, "coupon_5"), (250, "free_shipping"), (500, "voucher_25"), (1000, "free_course"))
FIRST_NAMES = ("anna", "ben", "chloe", "david", "emma", "felix", "giulia", "hugo", "ines", "jan",
               "kiran", "lea", "marta", "noah", "olga", "priya", "quentin", "rosa", "sam", "tomasz",
               "uma", "victor", "wei", "yuki", "zoe", "lucas", "sofia", "arjun", "camila", "mateo")
LAST_NAMES = ("smith", "muller", "martin", "garcia", "rossi", "jansen", "nowak", "johnson", "silva",
              "sharma", "tanaka", "brown", "dubois", "lopez", "schmidt", "kowalski", "patel", "costa",
              "wilson", "moreau", "bianchi", "fischer", "santos", "kumar", "lee", "novak")
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "proton.me", "icloud.com", "web.de", "mail.com")
PROFILE_FIELDS = ("user_id", "registered_at", "updated_at", "gender", "birth_date", "age",
                  "email", "country", "city", "signup_channel")

# Local-time hour weights: a morning bump, lunch, and the evening peak.
SESSION_HOURS = (1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 3.5, 3.2, 3.4,
                 4.2, 4.0, 3.4, 3.3, 3.6, 4.2, 5.2, 6.2, 6.8, 6.2, 4.5, 2.4)
# Uninstalls happen when people tidy their phone in the morning, not at 20:00.
UNINSTALL_HOURS = (0.5, 0.3, 0.2, 0.2, 0.2, 0.4, 1.0, 2.5, 4.5, 6.0, 6.0, 5.0,
                   3.5, 3.0, 2.8, 2.6, 2.4, 2.2, 2.0, 1.8, 1.6, 1.4, 1.0, 0.7)

HM = tuple(f"{h:02d}:{m:02d}" for h in range(24) for m in range(60))
SS = tuple(f":{s:02d}" for s in range(60))


def _cum(weighted):
    """Cumulative weights of (value, weight, ...) rows, normalised to end at 1."""
    acc = list(accumulate(row[1] for row in weighted))
    return [a / acc[-1] for a in acc]


def _cum_plain(weights):
    """Cumulative, normalised weights of a plain weight list."""
    acc = list(accumulate(weights))
    return [a / acc[-1] for a in acc]


COUNTRY_CUM = _cum(COUNTRIES)
DEVICE_CUM = _cum(DEVICES)
OS_CUM = [_cum(dev[2]) for dev in DEVICES]
GENDER_CUM = _cum(GENDERS)
CHANNEL_CUM = _cum(CHANNELS)
REFERRER_CUM = _cum(REFERRERS)
PAGE_CUM = _cum(PAGES)
SESSION_HOUR_CUM = _cum_plain(SESSION_HOURS)
UNINSTALL_HOUR_CUM = _cum_plain(UNINSTALL_HOURS)
PAGE_PROPS = tuple(f',"properties":{{"page":"{p}"}}' for p, _ in PAGES)


def _check_json_safe():
    """All catalogue strings are pasted into JSON unescaped, so none may need escaping."""
    texts = [c for row in COUNTRIES for c in row[5]] + [p for p, _ in PAGES]
    for text in texts:
        assert json.dumps(text, ensure_ascii=False)[1:-1] == text, text


_check_json_safe()


def _mix64(z):
    """SplitMix64 finaliser: a bijection on 64-bit ints, so distinct inputs give distinct ids."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _last_sunday(year, month):
    """Date of the last Sunday of a month (EU daylight-saving switch days)."""
    nxt = datetime.date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - datetime.timedelta(days=1)
    return last - datetime.timedelta(days=(last.weekday() + 1) % 7)


def _nth_sunday(year, month, n):
    """Date of the n-th Sunday of a month (US daylight-saving switch days)."""
    first = datetime.date(year, month, 1)
    return first + datetime.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


def _utc_offset_minutes(std_minutes, rule, day):
    """The country's UTC offset on a calendar day, with a day-granular DST rule."""
    if rule == "eu":
        dst = _last_sunday(day.year, 3) <= day < _last_sunday(day.year, 10)
    elif rule == "us":
        dst = _nth_sunday(day.year, 3, 2) <= day < _nth_sunday(day.year, 11, 1)
    else:
        dst = False
    return std_minutes + 60 * dst


def _offset_text(minutes):
    """ISO-8601 offset suffix such as ``+05:30`` or ``-04:00``."""
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


class _Simulation:
    """One generator run: per-user state in parallel lists, output streamed per day."""

    # user states
    PENDING, ACTIVE, DORMANT, UNINSTALLED, NEVER = range(5)
    # user kinds: how the first day looks
    APP_SIGNUP, WEB_SIGNUP, NO_PROFILE, PRE_REGISTERED, PROFILE_ONLY = range(5)

    def __init__(self, out, users, days, seed, start, progress):
        if users < 1 or days < 1:
            raise ValueError("users and days must be at least 1")
        self.out, self.n_users, self.days = out, users, days
        self.start = start if start is not None else DEFAULT_END - datetime.timedelta(days=days)
        self.progress = progress or (lambda _msg: None)
        self.rng = random.Random(seed)
        self.r = self.rng.random
        digest = hashlib.sha256(f"lakehouse-generator/{seed}".encode()).hexdigest()
        self.tag, self.key = digest[:6], int(digest[6:22], 16)
        self.start_epoch = int(datetime.datetime.combine(
            self.start, datetime.time(), datetime.timezone.utc).timestamp())
        self.n_events = self.n_lines = self.n_dup = self.n_late = 0
        self.n_sessions = self.n_orders = 0
        self.pending = {}          # day index -> late / duplicate lines to deliver then
        self.carry = []            # lines of sessions that ran past midnight
        self.update_rows = {}      # (year, month) -> profile update rows to write
        self._calendar()
        self._catalog()
        self._init_users()

    # ----- setup ---------------------------------------------------------------
    def _calendar(self):
        """Per-day date strings, weekday factors, app versions and country offsets."""
        dates = [self.start + datetime.timedelta(days=d) for d in range(-1, self.days + 1)]
        self.dstr = [d.isoformat() for d in dates]  # index d + 1 is day d
        self.wf = [WEEKDAY_FACTOR[d.weekday()] for d in dates[1:-1]]
        self.offsets = []
        for day in dates[1:-1]:
            mins = [_utc_offset_minutes(c[2], c[3], day) for c in COUNTRIES]
            self.offsets.append([(m * 60, _offset_text(m)) for m in mins])
        # a release every 14 days; index d + 60 is the newest version on day d
        self.versions = [f"4.{(d + 200) // 14 % 40}.{(d + 200) % 14 // 5}" for d in range(-60, self.days)]
        decay = [0.45 + 0.55 * math.exp(-t / 20.0) for t in range(self.days + 1)]
        early = [0.0] * (self.days + 1)
        for t, extra in ((1, ONE_AND_DONE), (2, 0.08), (3, 0.04)):
            if t <= self.days:
                early[t] = extra
        self.decay, self.early = decay, early

    def _catalog(self):
        """Products and courses with a category and a base price in EUR."""
        r = self.r
        items = []
        for k in range(N_PRODUCTS):
            price = round(4.99 + 250 * r() ** 3, 2)
            items.append((f"p-{k + 1:04d}", "product", PRODUCT_CATEGORIES[int(r() * 8)], price))
        for k in range(N_COURSES):
            price = 0.0 if r() < 0.15 else float(19 + 10 * int(r() * 14)) - 0.01
            items.append((f"c-{k + 1:03d}", "course", COURSE_CATEGORIES[k % 8], price))
        self.items = items
        self.item_frag = {}   # (item index, currency) -> (json fragment, local price)
        self.currencies = [c[4] for c in COUNTRIES]

    def _pick(self, cum):
        """Index drawn from cumulative weights."""
        return bisect.bisect(cum, self.r())

    def _local_to_utc_sec(self, hour_cum, country, d):
        """A UTC second-of-day whose local time follows the hour weights (wrapped into day d)."""
        local = bisect.bisect(hour_cum, self.r()) * 3600 + int(self.r() * 3600)
        return (local - self.offsets[d][country][0]) % DAY

    def _init_users(self):
        """Draw every user's first day and traits; ids follow signup order like a database."""
        r, days = self.r, self.days
        g = math.log(GROWTH)
        draws = []
        for _ in range(self.n_users):
            day = min(days - 1, int(days * math.log1p(r() * (GROWTH - 1)) / g))
            country = self._pick(COUNTRY_CUM)
            latest = DAY - MAX_SESSION if day == days - 1 else LATEST_START
            sec = self._local_to_utc_sec(SESSION_HOUR_CUM, country, day)
            while not 300 <= sec <= latest:
                sec = self._local_to_utc_sec(SESSION_HOUR_CUM, country, day)
            draws.append((day, sec, country))
        draws.sort()
        n = self.n_users
        self.uid = [f"u{i + 1:07d}" for i in range(n)]
        self.first_day = [dr[0] for dr in draws]
        self.first_sec = [dr[1] for dr in draws]
        self.country = [dr[2] for dr in draws]
        for name in ("kind", "device", "os", "city", "style", "lag", "chan", "gcat", "gvar",
                     "email_v", "reg", "prof_upd", "points", "course", "course_pct", "state"):
            setattr(self, name, [0] * n)
        self.eng, self.hazard, self.shop = [0.0] * n, [0.0] * n, [0.0] * n
        self.sid_ok, self.loyal = [True] * n, [False] * n
        for i in range(n):
            self._init_user(i)

    def _init_user(self, i):
        """Traits of one user: device, kind of first day, engagement, churn, style of timestamps."""
        r = self.r
        dev = self._pick(DEVICE_CUM)
        self.device[i] = dev
        self.os[i] = self._pick(OS_CUM[dev])
        self.city[i] = int(len(COUNTRIES[self.country[i]][5]) * r() ** 1.5)
        x = r()
        if x < P_PROFILE_ONLY:
            kind = self.PROFILE_ONLY
        elif dev not in APP_DEVICES:
            kind = self.WEB_SIGNUP
        else:
            y = r()
            kind = (self.NO_PROFILE if y < P_NO_PROFILE else
                    self.PRE_REGISTERED if y < P_NO_PROFILE + P_PRE_REGISTERED else self.APP_SIGNUP)
        self.kind[i] = kind
        self.state[i] = self.NEVER if kind == self.PROFILE_ONLY else self.PENDING
        x = r()
        self.style[i] = 0 if x < 0.80 else 1 if x < 0.88 else 2 if x < 0.98 else 3
        self.sid_ok[i] = r() >= P_NO_SESSION_ID
        self.lag[i] = int(40 * r() ** 2)
        self.eng[i] = 0.25 + 0.7 * r() ** 1.3
        self.hazard[i] = 0.004 + 0.06 * r() ** 2
        interest = r()
        self.shop[i] = 0.85 if interest < 0.45 else 0.15 if interest < 0.75 else 0.5
        self.loyal[i] = r() < P_LOYALTY_MEMBER
        self.course[i] = int(N_COURSES * r() ** 2)
        self.chan[i] = self._pick(CHANNEL_CUM)
        self.gcat[i] = self._pick(GENDER_CUM)
        self.gvar[i] = int(len(GENDERS[self.gcat[i]][2]) * r())
        first = self.start_epoch + self.first_day[i] * DAY + self.first_sec[i]
        if kind == self.NO_PROFILE:
            self.reg[i] = -1
        elif kind == self.PRE_REGISTERED:
            self.reg[i] = first - DAY - int(r() * 30 * DAY)
        else:
            self.reg[i] = first
        if self.reg[i] >= 0:
            last = self.start_epoch + self.days * DAY - 3600
            delay = 60 + int(r() * (600 if r() < 0.6 else 2 * DAY))
            self.prof_upd[i] = max(self.reg[i] + 60, min(self.reg[i] + delay, last))

    # ----- profiles --------------------------------------------------------------
    def _iso(self, epoch, i):
        """An instant in the user's timestamp style (profiles)."""
        style = self.style[i]
        if style == 2:
            d = min(max((epoch - self.start_epoch) // DAY, 0), self.days - 1)
            mins = self.offsets[d][self.country[i]][0] // 60
            tz = datetime.timezone(datetime.timedelta(minutes=mins))
            return datetime.datetime.fromtimestamp(epoch, tz).isoformat()
        text = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        return text if style == 3 else text + "Z"

    def _profile(self, i, updated_at, country=None, city=None, gvar=None, email_v=None):
        """The profile record of user i as it would be sent at ``updated_at``."""
        h = _mix64((self.key ^ (i * 0x9E3779B97F4A7C15)) & M64)
        h2 = _mix64(h)
        country = self.country[i] if country is None else country
        city = self.city[i] if city is None else city
        gvar = self.gvar[i] if gvar is None else gvar
        email_v = self.email_v[i] if email_v is None else email_v
        code = COUNTRIES[country][0]
        rec = {"user_id": self.uid[i], "registered_at": self._iso(self.reg[i], i),
               "updated_at": self._iso(updated_at, i), "gender": GENDERS[self.gcat[i]][2][gvar]}
        age = 16 + int(12 * (h2 & 0xFF) / 256.0 + 48 * ((h & 0xFFFF) / 65536.0) ** 1.8)
        which = (h >> 16) % 100
        if which < 85:
            end = self.start + datetime.timedelta(days=self.days)
            born = end - datetime.timedelta(days=int(age * 365.25) + (h >> 24) % 365)
            rec["birth_date"] = born.isoformat()
        elif which < 95:
            rec["age"] = age
        first, last = FIRST_NAMES[(h >> 33) % len(FIRST_NAMES)], LAST_NAMES[(h >> 38) % len(LAST_NAMES)]
        domain = EMAIL_DOMAINS[((h >> 43) + email_v) % len(EMAIL_DOMAINS)]
        email = f"{first}.{last}{(h >> 48) % 1000 + 7 * email_v}@{domain}"
        if (h2 >> 8) % 16 == 0:
            email = f" {email.capitalize()} "   # sloppy input: case and spaces
        rec["email"] = email
        rec["country"] = code.lower() if (h2 >> 16) % 20 == 0 else code
        rec["city"] = COUNTRIES[country][5][city]
        rec["signup_channel"] = CHANNELS[self.chan[i]][0]
        return rec

    def _write_initial_profiles(self):
        """Every registered user's first profile, sorted by user id."""
        lines = (json.dumps(self._profile(i, self.prof_upd[i]), ensure_ascii=False, separators=(",", ":"))
                 for i in range(self.n_users) if self.reg[i] >= 0)
        self._write(os.path.join(self.out, "users", "profiles-initial.jsonl"), lines, False)
        return sum(1 for i in range(self.n_users) if self.reg[i] >= 0)

    def _profile_update(self, i, d, sec):
        """User i edits their profile on day d: a newer record, maybe an older one arriving late."""
        r = self.r
        epoch = max(self.start_epoch + d * DAY + sec, self.prof_upd[i] + 1)
        old = self._profile(i, self.prof_upd[i])
        old_upd = self.prof_upd[i]
        x = r()
        if x < 0.40:
            self.city[i] = (self.city[i] + 1) % len(COUNTRIES[self.country[i]][5])
        elif x < 0.52:
            self.country[i] = self._pick(COUNTRY_CUM)
            self.city[i] = 0
        elif x < 0.80:
            if r() < 0.2:
                self.gcat[i] = self._pick(GENDER_CUM)
            self.gvar[i] = int(len(GENDERS[self.gcat[i]][2]) * r())
        else:
            self.email_v[i] += 1
        self.prof_upd[i] = epoch
        month = self._month_key(d)
        self.update_rows.setdefault(month, []).append(self._profile(i, epoch))
        if r() < P_STALE_UPDATE:
            # the previous version, stamped between registration and the last accepted update
            stale_at = old_upd - 1 - int(r() * max(old_upd - self.reg[i] - 1, 0))
            old["updated_at"] = self._iso(stale_at, i)
            old["city"] = old["city"] if r() < 0.5 else COUNTRIES[self.country[i]][5][-1]
            target = month if r() < 0.6 else self._month_key(min(d + 31, self.days - 1))
            self.update_rows.setdefault(target, []).append(old)

    def _month_key(self, d):
        """(year, month) of day index d."""
        day = self.start + datetime.timedelta(days=d)
        return day.year, day.month

    def _write_updates(self, month):
        """Write the CSV of profile updates that arrived in a calendar month."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=PROFILE_FIELDS, lineterminator="\n")
        writer.writeheader()
        rows = self.update_rows.pop(month, [])
        writer.writerows(rows)
        name = f"updates-{month[0]:04d}-{month[1]:02d}.csv"
        self._write_chunks(os.path.join(self.out, "users", name), [buf.getvalue()], False)
        self.progress(f"{name}: {len(rows)} profile updates")

    # ----- events: formatting ----------------------------------------------------
    def _begin_session(self, i, d, first_channel=None):
        """Fix the per-session parts of every line: user, session id, context, ts style."""
        r = self.r
        dev, os_i, country, city = self.device[i], self.os[i], self.country[i], self.city[i]
        if r() < 0.06:   # the same user on a second device
            dev = 1 if dev in APP_DEVICES else 0
            os_i = self._pick(OS_CUM[dev])
        cc = COUNTRIES[country]
        if r() < 0.03:   # travelling
            cc = COUNTRIES[self._pick(COUNTRY_CUM)]
            city = int(r() * len(cc[5]))
        city = min(city, len(cc[5]) - 1)
        self.dev = dev
        ref = (CHANNEL_REFERRER[first_channel] if first_channel
               else REFERRERS[self._pick(REFERRER_CUM)][0])
        code = cc[0].lower() if self.style[i] == 3 else cc[0]
        version = self.versions[max(d - self.lag[i], -60) + 60]
        self.ctx = (f',"context":{{"country":"{code}","city":"{cc[5][city]}","device":"{DEVICES[dev][0]}",'
                    f'"os":"{DEVICES[dev][2][os_i][0]}","app_version":"{version}","referrer":"{ref}"}}')
        self.n_sessions += 1
        if self.sid_ok[i]:
            sid = _mix64((self.n_sessions + (self.key ^ 0x5E55)) & M64)
            self.head = f',"user_id":"{self.uid[i]}","session_id":"{sid:016x}"'
        else:
            self.head = f',"user_id":"{self.uid[i]}"'
        self._ts_setup(i, d)

    def _ts_setup(self, i, d):
        """Prepare the timestamp style of user i on day d."""
        self.style_now = self.style[i]
        self.day_str = self.dstr[d + 1]
        self.d = d
        off, text = self.offsets[d][self.country[i]]
        self.off_sec, self.off_text = off, text

    def _ts(self, sec, ms=None):
        """Format second-of-day ``sec`` of the current day in the current user's style."""
        style = self.style_now
        if style == 0 and sec < DAY:
            return f"{self.day_str}T{HM[sec // 60]}{SS[sec % 60]}Z"
        return self._ts_other(sec, ms)

    def _ts_other(self, sec, ms):
        """The rarer styles: milliseconds, no offset, local offset, or past midnight."""
        style = self.style_now
        local = sec + self.off_sec if style == 2 else sec
        day = self.dstr[self.d + 1 + local // DAY]
        local %= DAY
        text = f"{day}T{HM[local // 60]}{SS[local % 60]}"
        if style == 0:
            return text + "Z"
        if style == 1:
            ms = (sec * 7919 + self.n_events) % 1000 if ms is None else ms
            return f"{text}.{ms:03d}Z"
        return text if style == 3 else text + self.off_text

    def _emit(self, name, sec, props="", ms=None):
        """Write one event line (rarely: hold it back as a late event, or duplicate it)."""
        self.n_events += 1
        z = _mix64((self.n_events + self.key) & M64)
        line = (f'{{"event_id":"{self.tag}-{z:016x}","event":"{name}","ts":"{self._ts(sec, ms)}"'
                f'{self.head}{props}{self.ctx}}}')
        if sec >= DAY:   # a session that ran past midnight: next day's file
            self.carry.append(line)
            return
        x = self.r()
        if x < P_LATE + P_DUPLICATE:
            self._oddity(line, x, sec)
        else:
            self.buckets[sec // 3600].append(line)

    def _oddity(self, line, x, sec):
        """Deliver a line late (days to weeks later) or twice (same file or a later one)."""
        d, r = self.d, self.r
        if x < P_LATE:
            target = d + 2 + int(26 * r() ** 2)
            if target < self.days:
                self.pending.setdefault(target, []).append(line)
                self.n_late += 1
                return
            self.buckets[sec // 3600].append(line)
            return
        self.buckets[sec // 3600].append(line)
        self.n_dup += 1
        target = d + (0, 0, 1, 2, 3)[int(r() * 5)]
        if target == d or target >= self.days:
            self.buckets[min(23, sec // 3600 + int(r() * 3))].append(line)
        else:
            self.pending.setdefault(target, []).append(line)

    # ----- events: behaviour -----------------------------------------------------
    def _session(self, i, d, t, first_of_day, install=False):
        """One ordinary session starting at second ``t``; returns the second it ended."""
        self._begin_session(i, d)
        if install:   # coming back after an uninstall
            self._emit("app_install", max(t - 20, 0))
        self._emit("session_start", t)
        t = self._body(i, t + 1 + int(self.r() * 5), first_of_day)
        self._emit("session_end", t)
        return t

    def _body(self, i, t, first_of_day):
        """Pages, then shopping or learning, maybe loyalty; returns the last second used."""
        r, emit = self.r, self._emit
        for _ in range(1 + int(r() * 3)):
            emit("page_view", t, PAGE_PROPS[self._pick(PAGE_CUM)])
            t += 4 + int(r() * 40)
        if first_of_day and self.loyal[i] and r() < 0.3:
            t = self._earn(i, t, 5, "daily_login")
        t = self._shopping(i, t) if r() < self.shop[i] else self._learning(i, t)
        if self.loyal[i] and self.points[i] >= REWARDS[0][0] and r() < 0.2:
            t = self._redeem(i, t)
        if r() < 0.5:
            emit("page_view", t, PAGE_PROPS[self._pick(PAGE_CUM)])
            t += 3 + int(r() * 30)
        return t

    def _item(self, i, k):
        """JSON fragment and local price of catalogue item k in user i's currency."""
        cur = self.currencies[self.country[i]]
        frag = self.item_frag.get((k, cur))
        if frag is None:
            item_id, kind, cat, base = self.items[k]
            price = round(base * FX[cur], 2)
            frag = (f'"item_id":"{item_id}","item_type":"{kind}","category":"{cat}","price":{price}', price)
            self.item_frag[(k, cur)] = frag
        return frag

    def _shopping(self, i, t):
        """Browse items, and down the funnel with device-specific drop-off."""
        r, emit = self.r, self._emit
        p_cart, p_checkout, p_buy = DEVICES[self.dev][3]
        viewed = []
        for _ in range(1 + int(r() * 4)):
            k = (int(N_PRODUCTS * r() ** 2.2) if r() < 0.8
                 else N_PRODUCTS + int(N_COURSES * r() ** 1.5))
            frag, _ = self._item(i, k)
            emit("item_view", t, f',"properties":{{{frag}}}')
            viewed.append(k)
            t += 8 + int(r() * 60)
        if r() < 0.08:
            frag, _ = self._item(i, viewed[-1])
            emit("wishlist_add", t, f',"properties":{{{frag},"quantity":1}}')
            t += 3 + int(r() * 10)
        if r() >= p_cart:
            return t
        cart = []
        for k in viewed[-1 - (r() < 0.3):]:
            frag, price = self._item(i, k)
            qty = 1 if k >= N_PRODUCTS or r() < 0.75 else 2 + int(r() * 2)
            emit("add_to_cart", t, f',"properties":{{{frag},"quantity":{qty}}}')
            cart.append((self.items[k][0], qty, price))
            t += 5 + int(r() * 30)
        if r() >= p_checkout:
            return t
        value = round(sum(q * p for _, q, p in cart), 2)
        emit("checkout_start", t, f',"properties":{{"cart_value":{value}}}')
        t += 20 + int(r() * 120)
        if r() >= p_buy:
            return t
        return self._purchase(i, t, cart, value)

    def _purchase(self, i, t, cart, value):
        """Pay for the cart; ~5 % of payments fail and half of those are retried."""
        r = self.r
        self.n_orders += 1
        order = f"o-{self.tag}-{self.n_orders:08d}"
        cur = self.currencies[self.country[i]]
        amount = 0.0 if r() < 0.01 else value   # a 100 % coupon now and then
        items = ",".join(f'{{"item_id":"{k}","quantity":{q},"price":{p}}}' for k, q, p in cart)
        head = f',"properties":{{"order_id":"{order}","amount":{amount},"currency":"{cur}","payment_status":"'
        tail = f'","items":[{items}]}}'
        if r() < P_FAILED_PAYMENT:
            self._emit("purchase", t, f"{head}failed{tail}")
            t += 30 + int(r() * 90)
            if r() < 0.5:
                return t
        self._emit("purchase", t, f"{head}success{tail}")
        t += 2 + int(r() * 5)
        points = int(amount / FX[cur])
        if self.loyal[i] and points > 0:
            t = self._earn(i, t, points, "purchase")
        return t

    def _learning(self, i, t):
        """Advance the current course; finish it sometimes; take a quiz sometimes."""
        r, emit = self.r, self._emit
        course = self.course[i]
        for _ in range(1 + (r() < 0.4)):
            pct = min(100, self.course_pct[i] + 5 + int(r() * 20))
            self.course_pct[i] = pct
            emit("course_progress", t,
                 f',"properties":{{"course_id":"c-{course + 1:03d}","progress_pct":{pct}}}')
            t += 60 + int(r() * 600)
            if pct == 100:
                if self.loyal[i]:
                    t = self._earn(i, t, 100, "course_completed")
                self.course[i] = (course + 1 + int(r() * 7)) % N_COURSES
                self.course_pct[i] = 0
                return t
        if r() < 0.35:
            t = self._quiz(i, t, course)
        return t

    def _quiz(self, i, t, course):
        """A quiz on the current module of the course; passing earns points."""
        r = self.r
        max_score = (10, 20, 100)[course % 3]
        skill = min(1.0, max(0.0, 0.45 + 0.5 * r() + 0.1 * (r() - 0.5)))
        score = round(max_score * skill)
        passed = score >= 0.6 * max_score
        duration = 60 + int(r() * 840)
        t += duration
        quiz = f"q-{course + 1:03d}-{self.course_pct[i] // 25 + 1}"
        self._emit("quiz_attempt", t, (
            f',"properties":{{"quiz_id":"{quiz}","course_id":"c-{course + 1:03d}","score":{score},'
            f'"max_score":{max_score},"passed":{"true" if passed else "false"},"duration_s":{duration}}}'))
        t += 2 + int(r() * 5)
        if passed and self.loyal[i]:
            t = self._earn(i, t, 20, "quiz_passed")
        return t

    def _earn(self, i, t, points, reason):
        """Credit loyalty points."""
        self.points[i] += points
        self._emit("points_earned", t, f',"properties":{{"points":{points},"reason":"{reason}"}}')
        return t + 1 + int(self.r() * 4)

    def _redeem(self, i, t):
        """Spend points on a reward the balance can pay for (never more than earned)."""
        affordable = [rw for rw in REWARDS if rw[0] <= self.points[i]]
        points, reward = affordable[int(self.r() * len(affordable))]
        self.points[i] -= points
        self._emit("points_redeemed", t, f',"properties":{{"points":{points},"reward":"{reward}"}}')
        return t + 5 + int(self.r() * 20)

    def _first_day(self, i, d):
        """Onboarding: install and/or signup (at exactly ``registered_at``), then a session."""
        r, emit, kind = self.r, self._emit, self.kind[i]
        sig = self.first_sec[i]
        self._begin_session(i, d, CHANNELS[self.chan[i]][0])
        t = sig - 40 - int(r() * 60)
        if kind != self.WEB_SIGNUP:
            emit("app_install", t)
            t += 3 + int(r() * 5)
        emit("session_start", t)
        emit("page_view", t + 3, PAGE_PROPS[1] if kind != self.WEB_SIGNUP else PAGE_PROPS[0])
        if kind in (self.APP_SIGNUP, self.WEB_SIGNUP):
            emit("signup", sig, f',"properties":{{"channel":"{CHANNELS[self.chan[i]][0]}"}}', ms=0)
        t = self._body(i, sig + 2, True)
        emit("session_end", t)
        if r() < 0.35:
            start = t + 1800 + int(r() * 4 * 3600)
            if start <= self.latest_start:
                t = self._session(i, d, start, False)
        return t

    def _active_day(self, i, d, reinstall):
        """One to three sessions at plausible local hours, at least 30 minutes apart."""
        r = self.r
        n = 1 + (r() < 0.45) + (r() < 0.18)
        starts = sorted(self._local_to_utc_sec(SESSION_HOUR_CUM, self.country[i], d) for _ in range(n))
        free, end = 0, 0
        for k, start in enumerate(starts):
            start = max(start, free)
            if start > self.latest_start:
                break
            install = reinstall and k == 0 and self.device[i] in APP_DEVICES
            end = self._session(i, d, start, k == 0, install)
            free = end + 1800 + 60 + int(r() * 3 * 3600)
        if self.reg[i] >= 0 and r() < P_PROFILE_UPDATE:
            self._profile_update(i, d, min(end + 60, DAY - 1))

    def _uninstall(self, i, d):
        """The app is removed, in the morning; the store reports it without a session."""
        self._begin_session(i, d)
        self.head = f',"user_id":"{self.uid[i]}"'
        self._emit("app_uninstall", self._local_to_utc_sec(UNINSTALL_HOUR_CUM, self.country[i], d))

    def _simulate_day(self, d, n_live):
        """Decide for each user who has started whether they churn, return or are active on day d."""
        r, state, hazard, eng = self.r, self.state, self.hazard, self.eng
        first, early, decay, wf = self.first_day, self.early, self.decay, self.wf[d]
        ACTIVE, DORMANT, UNINSTALLED, PENDING = self.ACTIVE, self.DORMANT, self.UNINSTALLED, self.PENDING
        for i in range(n_live):
            st = state[i]
            if st == ACTIVE:
                tenure = d - first[i]
                if r() < hazard[i] + early[tenure]:
                    state[i] = DORMANT
                    if self.device[i] in APP_DEVICES and r() < UNINSTALL_ON_CHURN:
                        state[i] = UNINSTALLED
                        self._uninstall(i, d)
                elif r() < eng[i] * decay[tenure] * wf:
                    self._active_day(i, d, False)
            elif st == DORMANT:
                if r() < RESURRECT_DORMANT * wf:
                    state[i] = ACTIVE
                    self._active_day(i, d, False)
            elif st == UNINSTALLED:
                if r() < RESURRECT_UNINSTALLED * wf:
                    state[i] = ACTIVE
                    self._active_day(i, d, True)
            elif st == PENDING:
                state[i] = ACTIVE
                self._first_day(i, d)

    # ----- output ----------------------------------------------------------------
    @staticmethod
    def _write_chunks(path, chunks, gz):
        """Write text chunks atomically (hidden temp name, then rename); gzip without mtime or name."""
        folder = os.path.dirname(path)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, "." + os.path.basename(path) + ".tmp")
        with open(tmp, "wb") as raw:
            sink = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="", compresslevel=6) if gz else raw
            for chunk in chunks:
                sink.write(chunk.encode("utf-8"))
            if gz:
                sink.close()
        os.replace(tmp, path)

    def _write(self, path, lines, gz):
        """Write lines, newline-terminated, in blocks of a few thousand."""
        def blocks():
            block = []
            for line in lines:
                block.append(line)
                if len(block) >= 4096:
                    yield "\n".join(block) + "\n"
                    block = []
            if block:
                yield "\n".join(block) + "\n"
        self._write_chunks(path, blocks(), gz)

    def _flush_day(self, d):
        """Write day d's file: its hour buckets, with late and duplicate lines mixed in."""
        for line in self.pending.pop(d, ()):
            self.buckets[int(self.r() * 24)].append(line)
        lines = [line for bucket in self.buckets for line in bucket]
        self.n_lines += len(lines)
        day = self.dstr[d + 1]
        gz = d % 3 == 2
        name = f"events-{day}.jsonl" + (".gz" if gz else "")
        self._write(os.path.join(self.out, "events", f"date={day}", name), lines, gz)
        return len(lines)

    def run(self):
        """Simulate every day in order, writing files as soon as they are complete."""
        profile_files = 1
        n_profiles = self._write_initial_profiles()
        self.progress(f"profiles-initial.jsonl: {n_profiles} profiles")
        n_live = 0
        for d in range(self.days):
            while n_live < self.n_users and self.first_day[n_live] <= d:
                n_live += 1
            self.buckets = [[] for _ in range(24)]
            self.buckets[0], self.carry = self.carry, []
            self.latest_start = DAY - MAX_SESSION if d == self.days - 1 else LATEST_START
            self.d = d
            self._simulate_day(d, n_live)
            written = self._flush_day(d)
            self.buckets = None
            self.progress(f"{self.dstr[d + 1]}: {written} events (total {self.n_lines})")
            if d == self.days - 1 or self._month_key(d + 1) != self._month_key(d):
                self._write_updates(self._month_key(d))
                profile_files += 1
        return {"events": self.n_lines, "users": self.n_users, "event_files": self.days,
                "profile_files": profile_files, "duplicates": self.n_dup, "late_events": self.n_late}


def generate(out: str, users: int, days: int, seed: int,
             start: datetime.date | None = None, progress=None) -> dict:
    """Write a landing folder of ``days`` days of events for ``users`` users; return counts.

    ``start`` defaults to ``days`` days before 2026-01-01 so output is reproducible;
    ``progress`` is an optional callable receiving one line per file written. The returned
    ``events`` counts lines written, so it includes the ``duplicates`` copies.
    """
    return _Simulation(out, users, days, seed, start, progress).run()


def main(argv=None):
    """CLI: ``python -m lakehouse.generator --out DIR --users N --days D --seed S [--start DATE]``."""
    parser = argparse.ArgumentParser(prog="lakehouse generate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="landing folder to write into")
    parser.add_argument("--users", type=int, default=2000, help="number of users (default 2000)")
    parser.add_argument("--days", type=int, default=60, help="number of days (default 60)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--start", type=datetime.date.fromisoformat, default=None,
                        help="first day YYYY-MM-DD (default: DAYS days before 2026-01-01)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    summary = generate(args.out, args.users, args.days, args.seed, args.start, progress)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
