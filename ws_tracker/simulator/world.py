"""A deterministic WorkStudio world: circuits, planners and planned units over time.

The world is a pure function of (config, clock). There is no mutable simulation state:

- The world has ``n_slots`` circuit *slots*. Slot ``s`` has a fixed period ``P_s`` (days) and
  phase; its generation ``g`` occupies ``[phase + g * P_s, phase + (g + 1) * P_s)`` days after
  ``EPOCH``, so the generation live at any instant is found in O(1), for any date, forwards
  or backwards.
- A generation is one work order: a main ``@`` job and, for about ``split_rate`` of them,
  split children (``C_a``, ``C_ba``...). Everything about it (GUIDs, region, planner, lifecycle
  dates, work days, permission days, audit days, then lazily its units) is drawn from a
  ``random.Random`` seeded by (seed, slot, generation, job), never from the clock.
- Lifecycle of a job: created (SA) -> ACTIV (planners assess: units are assessed on work days,
  and become visible when the planner's device syncs, 20:30-24:00 UTC that day) -> sometimes a
  few days ACTIV at 100 % while permissions come in -> QC -> sometimes REWRK -> QC -> CLOSE,
  and it stays listed in CLOSE until the generation ends; then the slot's next work order
  starts.
- The clock only selects which of those precomputed events are in the past: statuses,
  visible units, permission and audit values, SS_EDITDATE / WSREQ_VERSION.
- ``daily_activity`` (off by default) throttles change for load tests: each job then has
  precomputed *active days* (its creation day, then each day with a fixed probability) and
  shows, at any instant, its natural state as of the end (23:59:59.999 UTC) of its latest
  active day. Work done on other days lands at once on the next active day, so about that
  share of circuits change per simulated day. Off, every job is read at the clock itself.

Wire rows reproduce the quirks of spec/workstudio-api.md; ``circuits_truth`` and
``units_truth`` give the same facts as clean typed values for tests.
"""

from __future__ import annotations

import math
import random
import threading
import uuid
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from ws_tracker.rules import catalog
from ws_tracker.workstudio import protocol

EPOCH = date(2020, 1, 6)  # a Monday: weekday(day index) == day index % 7
DEFAULT_CLOCK = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, midday UTC

_DAY_MS = 86_400_000
_HOUR_MS = 3_600_000
_EPOCH_MS = int(datetime(EPOCH.year, EPOCH.month, EPOCH.day, tzinfo=UTC).timestamp() * 1000)
_OLE_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
_OLE_QUANTUM_MS = 675_000  # 1/128 day: OLE floats of multiples of it are exact binary values
NULL_DATE = "/Date(1899-12-30)/"

MIN_CLOSE_DAYS = 14  # a closed job stays listed at least this long

# Quirk rates (probabilities, drawn deterministically per job or per unit).
RATE_EDIT_OLE = 0.15  # job: SS_EDITDATE as an OLE Automation float
RATE_EDIT_EPOCH = 0.05  # job: SS_EDITDATE as /Date(epoch-ms)/
RATE_EXT_EMPTY = 0.10  # main job: SS_EXT "" instead of "@"
RATE_JOB_NUM_STR = 0.05  # job: VEGJOB_LENGTH/LENGTHCOMP/PRCENT as strings
RATE_FORESTER_SPACE = 0.30  # job: VEGJOB_FORESTER with a trailing space
RATE_TAKENBY_SPACE = 0.10  # job: SS_TAKENBY with a trailing space
RATE_WP_NULL = 0.08  # work order: WP start date /Date(1899-12-30)/
RATE_UNIT_FORESTER_SPACE = 0.25  # unit: VEGUNIT_FORESTER with a trailing space
RATE_UNIT_NUM_STR = 0.04  # unit: numeric columns as strings
RATE_UNIT_DATE_EPOCH = 0.05  # unit: VEGUNIT_ASSDDATE as /Date(epoch-ms)/
RATE_UNIT_DUPLICATE = 0.03  # unit: row repeated (server-side join duplicate)
RATE_PENDING_WORD = 0.10  # pending unit written "Pending" rather than ""
# daily_activity: share of listed jobs with natural changes waiting to be published (measured);
# an active day is drawn with probability daily_activity / this, so that about daily_activity
# of the listed circuits change per day.
ACTIVITY_PENDING_SHARE = 0.65


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 7
    circuits: int = 150  # approx. jobs listed across ACTIV, QC, REWRK, CLOSE at any date
    units_min: int = 50
    units_max: int = 300
    planners: int = 12
    split_rate: float = 0.10  # share of work orders with split children
    extra_unit_columns: bool = False  # append STATIONS_SPANLGTH, VEGUNIT_FRSTR_USER
    late_sync_rate: float = 0.0  # share of work days whose units sync 1-3 days late
    bounds_vertices: int = 300  # vertices of the SS_JOBBOUNDS polygon
    domain: str = "ASPLUNDH"
    # (min, max) planned units per job; overrides units_min/units_max when set.
    units_per_circuit: tuple[int, int] | None = None
    # None: natural activity (most ACTIV jobs change every weekday). A share such as 0.10:
    # about that share of the listed circuits change per simulated day (see the module doc).
    daily_activity: float | None = None

    @property
    def units_range(self) -> tuple[int, int]:
        if self.units_per_circuit is not None:
            lo, hi = self.units_per_circuit
            return int(lo), int(hi)
        return self.units_min, self.units_max


@dataclass(frozen=True)
class Planner:
    username: str  # DOMAIN\user
    name: str  # full name, clean


# Regions: the six real ones with equal weight, "Distribution" rarely.
_REGION_WEIGHTS = [
    (name, 0.04 if name == "Distribution" else 0.16) for name, _code in catalog.KNOWN_REGIONS
]
_REGION_CENTRE = {
    "Central": (-77.86, 40.79),
    "Lancaster": (-76.31, 40.04),
    "Lehigh": (-75.47, 40.61),
    "Harrisburg": (-76.88, 40.27),
    "Northeast": (-75.66, 41.41),
    "Susquehanna": (-77.00, 41.24),
    "Distribution": (-76.50, 40.50),
}
_TOWNS = {
    "Central": ("STATE COLLEGE", "BELLEFONTE", "LEWISTOWN", "HUNTINGDON"),
    "Lancaster": ("LANCASTER", "EPHRATA", "LITITZ", "STRASBURG"),
    "Lehigh": ("BETHLEHEM", "ALLENTOWN", "EASTON", "HAZLETON"),
    "Harrisburg": ("HARRISBURG", "CARLISLE", "HERSHEY", "LEMOYNE"),
    "Northeast": ("SCRANTON", "PITTSTON", "HONESDALE", "CARBONDALE"),
    "Susquehanna": ("WILLIAMSPORT", "SUNBURY", "LOCK HAVEN", "BLOOMSBURG"),
    "Distribution": ("SYSTEM", "DIST"),
}
_CYCLE_TYPES = [
    ("Cycle Maintenance - Trim", 0.55),
    ("Cycle Maintenance - Herbicide", 0.15),
    ("FFP CPM Maintenance", 0.15),
    ("Reactive", 0.15),
]
_SPLIT_EXTS = ("C_a", "C_b", "C_ba", "C_bb", "C_c", "C_ca")
_FIRST = ("Derek", "Maria", "James", "Ashley", "Kevin", "Tanya", "Brian", "Nicole", "Ryan",
          "Lauren", "Scott", "Megan", "Travis", "Heather", "Cody", "Dana", "Eric", "Kayla")
_LAST = ("Cinicola", "Hoffman", "Kowalski", "Reinhart", "Baptiste", "Yoder", "Stauffer",
         "Gallo", "Moyer", "Keller", "Brennan", "Novak", "Fenstermacher", "Ortiz", "Walsh",
         "Zimmerman", "Pham", "Snyder")
_AUDITORS = (("PPL\\rkline", "Rachel Kline"), ("PPL\\tmorgan", "Tom Morgan"),
             ("PPL\\jshah", "Jay Shah"))
_SPECIES = ("Ash", "Oak", "Red Maple", "Silver Maple", "White Pine", "Black Locust",
            "Tree of Heaven")
_NOTES = ("Call before entering", "Dog on property", "Locked gate", "Customer requests notice",
          "Steep bank", "Near garden")

# Unit code weights (work categories only, as the view returns).
_CATEGORY_WEIGHTS = (("VLG", 0.60), ("VAR", 0.15), ("VCT", 0.25))
_COMMON = {"SPM": 6, "MPM": 4, "SPB": 3, "SIDET": 2, "OHT": 2, "BRUSH": 5, "HCB": 3, "MOW": 2,
           "REM612": 5, "REM1218": 4, "ASH612": 2, "BTR": 2}
_CODE_WEIGHTS = {
    cat: [(code, _COMMON.get(code, 1)) for code in catalog.UNIT_CODES_BY_CATEGORY[cat]]
    for cat in catalog.WORK_CATEGORIES
}
_DESCRIPTIONS = {
    "SPM": "Single Phase - Manual", "SPB": "Single Phase - Bucket",
    "SPE": "Single Phase - Extended",
    "MPM": "Multi Phase - Manual", "MPB": "Multi Phase - Bucket", "MPE": "Multi Phase - Extended",
    "MPME": "Multi Phase - Manual Extended", "MPBE": "Multi Phase - Bucket Extended",
    "MST": "Mechanical Side Trim", "OHT": "Overhang Trim", "SIDET": "Side Trim",
    "SOHT": "Secondary Overhang Trim", "STB": "Service Trim - Bucket",
    "STM": "Service Trim - Manual",
    "TTS": "Tree To Service", "HCB": "Hand Cut Brush", "BRUSH": "Brush Cutting",
    "BRUSHTRIM": "Brush and Trim", "MOW": "Mowing", "HERBNA": "Herbicide - Non Aquatic",
    "HERBA": "Herbicide - Aquatic", "HERBS": "Herbicide - Stump",
    "Herb-Sub": "Herbicide - Substation",
    "T&M": "Time and Material", "BTR": "Brush Tree Removal", "VPS": "Vine Pole Spray",
}
_PERM_FINAL = (("Approved", 0.68), ("PPL Approved", 0.08), ("Refused", 0.07),
               ("No Contact", 0.12), ("Deferred", 0.05))


def _wchoice(rng: random.Random, pairs):
    total = sum(w for _, w in pairs)
    x = rng.random() * total
    for value, w in pairs:
        x -= w
        if x < 0:
            return value
    return pairs[-1][0]


def _day_ms(day: int) -> int:
    return _EPOCH_MS + day * _DAY_MS


def _day_date(day: int) -> date:
    return EPOCH + timedelta(days=day)


def _ms_datetime(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _to_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def _guid(rng: random.Random) -> str:
    return "{" + str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper() + "}"


def wire_date(d: date | None) -> str:
    return NULL_DATE if d is None else f"/Date({d.isoformat()})/"


def wire_date_epoch(d: date) -> str:
    ms = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)
    return f"/Date({ms})/"


def wire_timestamp(ms: int) -> str:
    dt = _ms_datetime(ms)
    return f"/Date({dt.strftime('%Y-%m-%dT%H:%M:%S')}.{dt.microsecond // 1000:03d}Z)/"


def ole_float(ms: int) -> float:
    """OLE Automation date (days since 1899-12-30 UTC) of a multiple of 1/128 day: exact."""
    delta = _ms_datetime(ms) - _OLE_EPOCH
    return delta.days + delta.seconds / 86400 + delta.microseconds / 86_400_000_000


def _num_str(v) -> str:
    return repr(v) if isinstance(v, float) else str(v)


_BOUNDS_TEMPLATES: dict[int, list[list[tuple[float, float]]]] = {}


def _bounds_templates(n: int) -> list[list[tuple[float, float]]]:
    """Eight wobbly unit rings of n vertices (same for every seed: they are only scenery)."""
    shapes = _BOUNDS_TEMPLATES.get(n)
    if shapes is None:
        shapes = []
        for s in range(8):
            p1, p2, p3 = 0.7 * s, 1.9 * s + 0.3, 2.3 * s + 1.1
            ring = []
            for k in range(n):
                a = 2 * math.pi * k / n
                r = (1 + 0.3 * math.sin(3 * a + p1) + 0.15 * math.sin(7 * a + p2)
                     + 0.05 * math.sin(23 * a + p3))
                ring.append((r * math.cos(a), 0.75 * r * math.sin(a)))
            shapes.append(ring)
        _BOUNDS_TEMPLATES[n] = shapes
    return shapes


# ---------------------------------------------------------------------------------------------
# Precomputed (clock-independent) structures


@dataclass
class _Unit:
    object_id: int
    day: int  # assessed day index
    sync_ms: int  # visible from
    station: str
    span_m: float
    from_str: str
    to_str: str
    code: str
    category: str
    linear_ft: float
    acres: float
    trees: int
    planner: Planner
    forester_wire: str
    perm_initial: str  # wire value while not resolved
    perm_final: str | None
    perm_ms: int | None  # when perm_final applies
    audit_ms: int | None
    audit_pass: bool
    auditor: tuple[str, str]
    species: str
    note: str
    lon: float
    lat: float
    geometry: list
    date_epoch: bool
    num_str: bool
    duplicate: bool


@dataclass
class _Job:
    key: tuple[int, int, int]  # (slot, gen, index)
    guid: str
    parent_guid: str | None
    work_order: str
    ext: str  # "@" for the main job
    wire_ext: str
    job_type: str
    region: str
    cycle_type: str
    line_name: str
    feeder_id: str
    title: str
    total_miles: float
    contractor: str
    planner: Planner
    helper: Planner
    forester_wire: str
    taken_by_wire: str
    assigned_to: str
    wp_start: date | None
    cost_method: str
    comments: str
    phase_ms: list[int]  # status change instants, ascending
    phase_status: list[str]
    end_ms: int  # no longer listed from here
    work_days: list[int]
    work_counts: list[int]
    work_sync_ms: list[int]
    sync_sorted: list[int]
    sync_cum: list[int]  # units visible once sync_sorted[i] passed
    n_units: int
    perm_ms: list[int]
    audit_ms: list[int]
    events: list[int]  # every instant the job changes, ascending
    version_base: int
    edit_encoding: str  # iso | ole | epoch
    num_str: bool
    origin: tuple[float, float]
    heading: float
    seed_str: str
    active_days: list[int] | None = None  # daily_activity: days whose end publishes state
    _bounds: dict | None = field(default=None, repr=False)
    _sketch: str | None = field(default=None, repr=False)

    def status_at(self, t: int) -> str | None:
        if t < self.phase_ms[0] or t >= self.end_ms:
            return None
        return self.phase_status[bisect_right(self.phase_ms, t) - 1]

    def visible_units(self, t: int) -> int:
        i = bisect_right(self.sync_sorted, t)
        return self.sync_cum[i - 1] if i else 0

    def edit_ms(self, t: int) -> int:
        i = bisect_right(self.events, t)
        ms = self.events[i - 1] if i else self.phase_ms[0]
        if self.edit_encoding == "ole":
            ms -= ms % _OLE_QUANTUM_MS
        return ms

    def version(self, t: int) -> int:
        return self.version_base + bisect_right(self.events, t)

    def observed(self, t: int) -> int:
        """The instant whose natural state the job shows at ``t``: ``t`` itself, or with
        daily_activity the end of its latest active day ending at or before ``t``."""
        if self.active_days is None:
            return t
        last_day = (t + 1 - _EPOCH_MS) // _DAY_MS - 1  # latest day whose end is <= t
        i = bisect_right(self.active_days, last_day)
        if i == 0:
            return self.phase_ms[0] - 1  # not published yet
        return min(t, _day_ms(self.active_days[i - 1] + 1) - 1)


@dataclass
class _Group:
    slot: int
    gen: int
    work_order: str
    region: str
    jobs: list[_Job]


class World:
    """The simulated WorkStudio. Thread-safe: producers read the clock once per call."""

    def __init__(self, config: WorldConfig | None = None, now: datetime | None = None):
        self.config = config or WorldConfig()
        c = self.config
        lo, hi = c.units_range
        if lo < 1 or hi < lo:
            raise ValueError(f"units per circuit: need 1 <= min <= max, got {lo}-{hi}")
        if c.daily_activity is not None and not 0 < c.daily_activity <= 1:
            raise ValueError(f"daily_activity must be in (0, 1], got {c.daily_activity}")
        self._activity_p = (None if c.daily_activity is None
                            else min(1.0, c.daily_activity / ACTIVITY_PENDING_SHARE))
        self._lock = threading.Lock()
        self._now = _to_utc(now or DEFAULT_CLOCK)
        self._groups: dict[tuple[int, int], _Group] = {}
        self._units: dict[tuple[int, int, int], list[_Unit]] = {}
        self._by_guid: dict[str, tuple[int, int, int]] = {}
        # ~96 % of a slot's time is listed in the four synced statuses; a work order has
        # 1 + split_rate * 1.8 jobs on average.
        jobs_per_slot = 0.96 * (1 + c.split_rate * 1.8)
        self.n_slots = max(1, round(c.circuits / jobs_per_slot))
        rng = random.Random(f"ws-sim:{c.seed}:world")
        self.planners = self._make_planners(rng, max(2, c.planners))
        self._periods: list[int] = []
        self._phases: list[int] = []
        for _ in range(self.n_slots):
            period = rng.randint(140, 190)
            self._periods.append(period)
            self._phases.append(rng.randrange(period))
        # Work-order numbers: slot s, generation g -> index s*3 + g%3 (a slot cannot start
        # three generations in one year: periods are >= 140 days), shuffled.
        n_numbers = self.n_slots * 3
        width = max(4, len(str(n_numbers + 1000)))
        self._wo_low = 10 ** (width - 1)
        span = 9 * 10 ** (width - 1)
        numbers = rng.sample(range(span), n_numbers)
        self._wo_number = [self._wo_low + n for n in numbers]
        self._wo_index = {num: i for i, num in enumerate(self._wo_number)}
        self._wo_width = width
        self._unit_stride = 10 ** len(str(hi))

    # ----------------------------------------------------------------------------- clock
    @property
    def now(self) -> datetime:
        return self._now

    def set_clock(self, dt: datetime) -> None:
        with self._lock:
            self._now = _to_utc(dt)

    def advance(self, days: float = 1) -> datetime:
        with self._lock:
            self._now = self._now + timedelta(days=days)
            return self._now

    def _now_ms(self) -> int:
        return int(self._now.timestamp() * 1000)

    # ----------------------------------------------------------------------------- setup
    def _make_planners(self, rng: random.Random, n: int) -> list[Planner]:
        planners: list[Planner] = []
        seen: set[str] = set()
        firsts, lasts = list(_FIRST), list(_LAST)
        rng.shuffle(firsts)
        rng.shuffle(lasts)
        i = 0
        while len(planners) < n:
            first = firsts[i % len(firsts)]
            last = lasts[(i + i // len(lasts)) % len(lasts)]
            i += 1
            user = (first[0] + last).lower()
            if user in seen:
                continue
            seen.add(user)
            planners.append(Planner(f"{self.config.domain}\\{user}", f"{first} {last}"))
        return planners

    # ----------------------------------------------------------------------------- slots
    def _gen_at_day(self, slot: int, day: int) -> int:
        return (day - self._phases[slot]) // self._periods[slot]

    def _gen_start_day(self, slot: int, gen: int) -> int:
        return self._phases[slot] + gen * self._periods[slot]

    def _group(self, slot: int, gen: int) -> _Group:
        key = (slot, gen)
        group = self._groups.get(key)
        if group is None:
            group = self._build_group(slot, gen)
            if len(self._groups) > 20_000:
                self._groups.clear()
            self._groups[key] = group
            if len(self._by_guid) > 200_000:
                self._by_guid.clear()
            for job in group.jobs:
                self._by_guid[job.guid] = job.key
        return group

    def _groups_at(self, t: int) -> list[_Group]:
        day = (t - _EPOCH_MS) // _DAY_MS
        out = []
        for slot in range(self.n_slots):
            out.append(self._group(slot, self._gen_at_day(slot, day)))
        return out

    def _build_group(self, slot: int, gen: int) -> _Group:
        c = self.config
        seed_str = f"ws-sim:{c.seed}:{slot}:{gen}"
        rng = random.Random(seed_str)
        start_day = self._gen_start_day(slot, gen)
        end_day = start_day + self._periods[slot]
        year = _day_date(start_day).year
        number = self._wo_number[slot * 3 + gen % 3]
        work_order = f"{year}-{number:0{self._wo_width}d}"
        region = _wchoice(rng, _REGION_WEIGHTS)
        cycle_type = _wchoice(rng, _CYCLE_TYPES)
        town = rng.choice(_TOWNS[region])
        line_name = f"{town} {rng.randint(10, 69)}-{rng.randint(1, 9):02d}"
        feeder_id = str(rng.randint(10000, 99999))
        contractor = "ASPLUNDH" if rng.random() < 0.45 else "Asplundh"
        wp_start = None if rng.random() < RATE_WP_NULL else date(year, 1, 1)
        planner_i = rng.randrange(len(self.planners))
        n_splits = 0
        if rng.random() < c.split_rate:
            n_splits = rng.choice((1, 1, 2, 2, 3))
        exts = ["@"] + sorted(rng.sample(_SPLIT_EXTS, n_splits))
        centre = _REGION_CENTRE.get(region, (-76.5, 40.5))
        jobs: list[_Job] = []
        main_guid = None
        for j, ext in enumerate(exts):
            jrng = random.Random(f"{seed_str}:{j}")
            guid = _guid(jrng)
            if j == 0:
                main_guid = guid
                pl = self.planners[planner_i]
            else:
                # splits are often handed to another planner
                pl = self.planners[(planner_i + jrng.randint(0, 2)) % len(self.planners)]
            n_pl = len(self.planners)
            helper = self.planners[(self.planners.index(pl) + jrng.randint(1, n_pl - 1)) % n_pl]
            created_day = start_day + (0 if j == 0 else jrng.randint(0, 10))
            job = self._build_job(
                jrng, (slot, gen, j), guid, None if j == 0 else main_guid, work_order, ext,
                region, cycle_type, line_name, feeder_id, contractor, pl, helper, wp_start,
                created_day, end_day, centre, f"{seed_str}:{j}",
            )
            jobs.append(job)
        return _Group(slot, gen, work_order, region, jobs)

    def _build_job(self, rng, key, guid, parent_guid, work_order, ext, region, cycle_type,
                   line_name, feeder_id, contractor, planner, helper, wp_start, created_day,
                   end_day, centre, seed_str) -> _Job:
        c = self.config
        main = parent_guid is None

        def tod(lo_h: float, hi_h: float) -> int:  # a time of day, in ms
            return int((lo_h + rng.random() * (hi_h - lo_h)) * _HOUR_MS)

        # --- lifecycle lengths (days), shrunk to leave MIN_CLOSE_DAYS listed in CLOSE
        sa = rng.randint(0, 6)
        assess = rng.randint(40, 100)
        wait = 0 if rng.random() < 0.3 else rng.randint(1, 20)
        qc = rng.randint(7, 30)
        rework = rng.random() < 0.45
        rw = rng.randint(7, 25) if rework else 0
        qc2 = rng.randint(3, 12) if rework else 0
        avail = end_day - created_day - MIN_CLOSE_DAYS
        excess = sa + assess + wait + qc + rw + qc2 - avail
        for name, floor in (("wait", 0), ("assess", 15), ("qc", 3), ("sa", 0)):
            if excess <= 0:
                break
            cur = {"wait": wait, "assess": assess, "qc": qc, "sa": sa}[name]
            cut = min(excess, cur - floor)
            excess -= cut
            if name == "wait":
                wait -= cut
            elif name == "assess":
                assess -= cut
            elif name == "qc":
                qc -= cut
            else:
                sa -= cut
        if excess > 0:
            rework, rw, qc2 = False, 0, 0

        created_ms = _day_ms(created_day) + tod(13, 19)
        activ_day = created_day + sa
        activ_ms = _day_ms(activ_day) + tod(13, 19.5)
        if activ_ms <= created_ms:
            activ_ms = created_ms + rng.randint(10, 120) * 60_000

        # --- work days and units per day
        n_units = rng.randint(*c.units_range)
        p_work = rng.uniform(0.5, 0.85)
        days = []
        for d in range(activ_day, activ_day + assess):
            wd = d % 7
            if (wd < 5 and rng.random() < p_work) or (wd == 5 and rng.random() < 0.05):
                days.append(d)
        if not days:
            days = [activ_day + assess - 1]
        weights = [0.2 + 1.6 * rng.random() for _ in days]
        total_w = sum(weights)
        raw = [n_units * w / total_w for w in weights]
        counts = [int(x) for x in raw]
        short = n_units - sum(counts)
        for i in sorted(range(len(days)), key=lambda i: raw[i] - counts[i], reverse=True)[:short]:
            counts[i] += 1
        work_days = [d for d, n in zip(days, counts) if n]
        work_counts = [n for n in counts if n]
        work_sync = []
        for d in work_days:
            if c.late_sync_rate and rng.random() < c.late_sync_rate:
                work_sync.append(_day_ms(d + rng.randint(1, 3)) + tod(13, 23))
            else:
                work_sync.append(_day_ms(d) + tod(20.5, 23.95))
        order = sorted(range(len(work_days)), key=lambda i: work_sync[i])
        sync_sorted, sync_cum, acc = [], [], 0
        for i in order:
            acc += work_counts[i]
            sync_sorted.append(work_sync[i])
            sync_cum.append(acc)
        last_sync = max(work_sync)

        # --- status transitions
        phase_ms = [created_ms, activ_ms]
        phase_status = ["SA", "ACTIV"]

        def transition(day: int, status: str) -> None:
            ms = max(_day_ms(day) + tod(13, 19.5), phase_ms[-1] + 600_000, last_sync + 600_000)
            phase_ms.append(ms)
            phase_status.append(status)

        qc_day = activ_day + assess + wait
        transition(qc_day, "QC")
        if rework:
            transition(qc_day + qc, "REWRK")
            transition(qc_day + qc + rw, "QC")
            transition(qc_day + qc + rw + qc2, "CLOSE")
        else:
            transition(qc_day + qc, "CLOSE")
        end_ms = _day_ms(end_day)

        # --- permission days (a landowner liaison works the job every few weekdays)
        perm_ms = []
        d = work_days[0] + 2
        last_perm_day = min(end_day - 1, qc_day + 30)
        while d <= last_perm_day:
            if d % 7 >= 5:
                d += 7 - d % 7
                continue
            perm_ms.append(_day_ms(d) + tod(13, 20))
            d += rng.randint(2, 6)

        # --- audit instants inside each QC window
        audit_ms = []
        for i, status in enumerate(phase_status):
            if status == "QC" and i + 1 < len(phase_ms):
                lo, hi = phase_ms[i] + _HOUR_MS, phase_ms[i + 1] - _HOUR_MS
                if hi > lo:
                    audit_ms.extend(rng.randint(lo, hi) for _ in range(rng.randint(1, 3)))
        audit_ms.sort()

        events = sorted(phase_ms + work_sync + perm_ms + audit_ms)

        r = rng.random()
        edit_encoding = "ole" if r < RATE_EDIT_OLE else (
            "epoch" if r < RATE_EDIT_OLE + RATE_EDIT_EPOCH else "iso")
        title = line_name if main else f"{line_name} ({ext})"
        total_miles = round(rng.uniform(5, 60) if main else rng.uniform(2, 25), 2)
        lon0, lat0 = centre
        origin = (lon0 + rng.uniform(-0.25, 0.25), lat0 + rng.uniform(-0.18, 0.18))
        active_days = None
        if self._activity_p is not None:
            # its own generator: the natural draws above stay the same with activity on or off
            arng = random.Random(seed_str + ":activity")
            # creation and activation are always published (a work order starts listed)
            active_days = [d for d in range(created_day, end_day + 1)
                           if arng.random() < self._activity_p or d in (created_day, activ_day)]
        return _Job(
            key=key,
            guid=guid,
            parent_guid=parent_guid,
            work_order=work_order,
            ext=ext,
            wire_ext=("" if main and rng.random() < RATE_EXT_EMPTY else ext),
            job_type="Assessment Dx" if main else "Split_Assessment",
            region=region,
            cycle_type=cycle_type,
            line_name=line_name,
            feeder_id=feeder_id,
            title=title,
            total_miles=total_miles,
            contractor=contractor,
            planner=planner,
            helper=helper,
            forester_wire=planner.name + (" " if rng.random() < RATE_FORESTER_SPACE else ""),
            taken_by_wire=planner.username + (" " if rng.random() < RATE_TAKENBY_SPACE else ""),
            assigned_to=planner.username if rng.random() < 0.3 else "",
            wp_start=wp_start,
            cost_method="Unit Price" if rng.random() < 0.85 else "Time & Material",
            comments="" if rng.random() < 0.85 else rng.choice(_NOTES),
            phase_ms=phase_ms,
            phase_status=phase_status,
            end_ms=end_ms,
            work_days=work_days,
            work_counts=work_counts,
            work_sync_ms=work_sync,
            sync_sorted=sync_sorted,
            sync_cum=sync_cum,
            n_units=n_units,
            perm_ms=perm_ms,
            audit_ms=audit_ms,
            events=events,
            version_base=rng.randint(1, 12),
            edit_encoding=edit_encoding,
            num_str=rng.random() < RATE_JOB_NUM_STR,
            origin=origin,
            heading=rng.uniform(0, 2 * math.pi),
            seed_str=seed_str,
            active_days=active_days,
        )

    # ----------------------------------------------------------------------------- units
    def _job(self, key: tuple[int, int, int]) -> _Job:
        slot, gen, j = key
        return self._group(slot, gen).jobs[j]

    def _job_units(self, job: _Job) -> list[_Unit]:
        units = self._units.get(job.key)
        if units is not None:
            return units
        rng = random.Random(job.seed_str + ":units")
        slot, gen, j = job.key
        serial = ((gen + 400) * self.n_slots + slot) * 8 + j
        base_id = 1_000_000 + serial * self._unit_stride
        units = []
        station_n = 0
        span_m = 0.0
        from_str = to_str = ""
        lon, lat = job.origin
        step = 0.0009  # ~80 m of longitude per station
        structure = rng.randint(10_000_000, 99_999_999)
        i = 0
        for day, count, sync_ms in zip(job.work_days, job.work_counts, job.work_sync_ms):
            for _ in range(count):
                if station_n == 0 or rng.random() < 0.55:
                    station_n += 1
                    span_m = round(rng.uniform(30, 120), 1)
                    from_str, to_str = str(structure), str(structure + rng.randint(1, 3))
                    structure = int(to_str)
                    heading = job.heading + rng.uniform(-0.5, 0.5)
                    lon += step * math.cos(heading)
                    lat += step * 0.75 * math.sin(heading)
                category = _wchoice(rng, _CATEGORY_WEIGHTS)
                code = _wchoice(rng, _CODE_WEIGHTS[category])
                linear_ft = round(rng.uniform(20, 1500), 1) if category == "VLG" else 0.0
                acres = round(rng.uniform(0.05, 3.0), 2) if category == "VAR" else 0.0
                trees = rng.randint(1, 8) if category == "VCT" else 0
                planner = job.planner if rng.random() < 0.85 else job.helper
                forester_wire = planner.name + (
                    " " if rng.random() < RATE_UNIT_FORESTER_SPACE else "")
                r = rng.random()
                perm_final = perm_at = None
                if r < 0.04:
                    perm_initial = "N/A"
                elif r < 0.07:
                    perm_initial = "Approved"
                else:
                    perm_initial = "Pending" if rng.random() < RATE_PENDING_WORD else ""
                    if rng.random() < 0.85:
                        earliest = max(_day_ms(day + rng.randint(2, 30)), sync_ms)
                        k = bisect_right(job.perm_ms, earliest)
                        if k < len(job.perm_ms):
                            perm_at = job.perm_ms[k]
                            perm_final = _wchoice(rng, _PERM_FINAL)
                audit_at = None
                if job.audit_ms and rng.random() < 0.3:
                    audit_at = rng.choice(job.audit_ms)
                ulon = lon + rng.uniform(-0.0002, 0.0002)
                ulat = lat + rng.uniform(-0.0002, 0.0002)
                geometry = [[round(ulon, 6), round(ulat, 6)],
                            [round(ulon + step * 0.3, 6), round(ulat + step * 0.2, 6)]]
                units.append(_Unit(
                    object_id=base_id + i,
                    day=day,
                    sync_ms=sync_ms,
                    station=str(station_n * 10),
                    span_m=span_m,
                    from_str=from_str,
                    to_str=to_str,
                    code=code,
                    category=category,
                    linear_ft=linear_ft,
                    acres=acres,
                    trees=trees,
                    planner=planner,
                    forester_wire=forester_wire,
                    perm_initial=perm_initial,
                    perm_final=perm_final,
                    perm_ms=perm_at,
                    audit_ms=audit_at,
                    audit_pass=rng.random() < 0.9,
                    auditor=rng.choice(_AUDITORS),
                    species=rng.choice(_SPECIES) if category == "VCT" else "",
                    note=rng.choice(_NOTES) if rng.random() < 0.05 else "",
                    lon=round(ulon, 6),
                    lat=round(ulat, 6),
                    geometry=geometry,
                    date_epoch=rng.random() < RATE_UNIT_DATE_EPOCH,
                    num_str=rng.random() < RATE_UNIT_NUM_STR,
                    duplicate=rng.random() < RATE_UNIT_DUPLICATE,
                ))
                i += 1
        if len(self._units) > 4096:
            self._units.clear()
        self._units[job.key] = units
        return units

    @staticmethod
    def _permission(u: _Unit, t: int) -> str:
        if u.perm_ms is not None and t >= u.perm_ms:
            return u.perm_final or ""
        return u.perm_initial

    # ----------------------------------------------------------------------------- lookup
    def _group_for_work_order(self, work_order: str, t: int) -> _Group | None:
        try:
            year_s, num_s = work_order.strip().split("-", 1)
            year, number = int(year_s), int(num_s)
        except ValueError:
            return None
        idx = self._wo_index.get(number)
        if idx is None:
            return None
        slot, rem = divmod(idx, 3)
        first = (date(year, 1, 1) - EPOCH).days
        last = (date(year, 12, 31) - EPOCH).days
        for gen in range(self._gen_at_day(slot, first), self._gen_at_day(slot, last) + 1):
            if gen % 3 != rem:
                continue
            if _day_date(self._gen_start_day(slot, gen)).year != year:
                continue
            group = self._group(slot, gen)
            main = group.jobs[0]
            if main.phase_ms[0] <= main.observed(t):
                return group
        return None

    @staticmethod
    def _region_ok(region: str, regions) -> bool:
        if regions is None:
            return True
        return region.casefold() in {r.strip().casefold() for r in regions}

    # ----------------------------------------------------------------------------- wire rows
    def planned_units_heading(self) -> list[str]:
        heading = list(protocol.PLANNED_UNITS_HEADING)
        if self.config.extra_unit_columns:
            heading += list(protocol.PLANNED_UNITS_OPTIONAL)
        return heading

    def circuit_rows(self, status: str, regions=None) -> list[list]:
        """Rows of the circuit list view for one status, in CIRCUIT_LIST_HEADING order."""
        t = self._now_ms()
        rows = []
        for group in self._groups_at(t):
            if not self._region_ok(group.region, regions):
                continue
            for job in group.jobs:
                tj = job.observed(t)
                if job.status_at(tj) == status:
                    rows.append(self._circuit_row(job, tj, status))
        rows.sort(key=lambda r: (r[1], r[2] not in ("", "@"), r[2]))
        return rows

    def _progress(self, job: _Job, t: int, status: str) -> tuple[float, int]:
        if status in ("SA", "ACTIV"):
            frac = job.visible_units(t) / job.n_units
        else:
            frac = 1.0
        return round(job.total_miles * frac, 2), round(100 * frac)

    def _edit_wire(self, job: _Job, ms: int):
        if job.edit_encoding == "ole":
            return ole_float(ms)
        if job.edit_encoding == "epoch":
            return f"/Date({ms})/"
        return wire_timestamp(ms)

    def _circuit_row(self, job: _Job, t: int, status: str) -> list:
        miles_planned, percent = self._progress(job, t, status)
        length, comp, prc = job.total_miles, miles_planned, percent
        if job.num_str:
            length, comp, prc = _num_str(length), _num_str(comp), _num_str(prc)
        version = job.version(t)
        edit = job.edit_ms(t)
        synch = version if t - edit > _DAY_MS else version - 1
        bounds, sketch = self._bounds(job)
        return [
            job.guid,
            job.work_order,
            job.wire_ext,
            job.title,
            status,
            job.job_type,
            job.cycle_type,
            job.region,
            length,
            comp,
            prc,
            job.contractor,
            job.forester_wire,
            job.taken_by_wire,
            job.assigned_to,
            self._edit_wire(job, edit),
            version,
            synch,
            wire_date(job.wp_start),
            job.parent_guid or "",
            job.line_name,
            job.comments,
            job.cost_method,
            "PPL",
            "Asplundh",
            sketch,
            bounds,
        ]

    def _bounds(self, job: _Job) -> tuple[dict, str]:
        if job._bounds is None:
            lon0, lat0 = job.origin
            r0 = 0.02 + job.total_miles / 2000
            shapes = _bounds_templates(max(8, self.config.bounds_vertices))
            shape = shapes[int(job.heading * 1000) % len(shapes)]
            ring = [[round(lon0 + r0 * x, 6), round(lat0 + r0 * y, 6)] for x, y in shape]
            ring.append(ring[0])
            xs = [p[0] for p in ring]
            ys = [p[1] for p in ring]
            job._sketch = f"{min(xs):.6f},{min(ys):.6f},{max(xs):.6f},{max(ys):.6f}"
            job._bounds = {"@sourceFormat": "DataObjectGeometry", "type": "Polygon",
                           "coordinates": [ring]}
        return job._bounds, job._sketch

    def planned_unit_rows(self, work_order: str, regions=None) -> list[list]:
        """Rows of the planned-units view for a work order: every job (main and splits), units
        synced on or before the clock, ordered by assessed date, duplicates included."""
        t = self._now_ms()
        group = self._group_for_work_order(work_order, t)
        if group is None or not self._region_ok(group.region, regions):
            return []
        extra = self.config.extra_unit_columns
        keyed = []
        for job in group.jobs:
            tj = job.observed(t)
            if job.phase_ms[0] > tj:
                continue
            for u in self._job_units(job):
                if u.sync_ms > tj:
                    continue
                row = self._unit_row(job, u, tj, extra)
                keyed.append(((u.day, u.object_id), row))
                if u.duplicate:
                    keyed.append(((u.day, u.object_id), list(row)))
        keyed.sort(key=lambda kr: kr[0])
        return [row for _, row in keyed]

    def _unit_row(self, job: _Job, u: _Unit, t: int, extra: bool) -> list:
        d = _day_date(u.day)
        # unmeasured columns are integer 0 on the wire; a few rows send numbers as strings
        trees = u.trees
        length = u.linear_ft if u.category == "VLG" else 0
        acres = u.acres if u.category == "VAR" else 0
        if u.num_str:
            trees, length, acres = _num_str(trees), _num_str(length), _num_str(acres)
        audited = u.audit_ms is not None and t >= u.audit_ms
        removcat = ""
        for prefix in ("REM", "ASH"):
            if u.code.startswith(prefix):
                removcat = u.code[len(prefix):]
        row = [
            job.region,
            job.cycle_type,
            wire_date(job.wp_start),
            job.work_order,
            job.wire_ext,
            job.line_name,
            job.feeder_id,
            u.station,
            _DESCRIPTIONS.get(u.code, u.code),
            removcat,
            u.forester_wire,
            wire_date_epoch(d) if u.date_epoch else wire_date(d),
            self._permission(u, t),
            job.contractor,
            trees,
            length,
            acres,
            u.from_str,
            u.to_str,
            u.code,
            u.auditor[0] if audited else "",
            u.auditor[1] if audited else "",
            wire_date(_ms_datetime(u.audit_ms).date()) if audited else NULL_DATE,
            "" if not audited or u.audit_pass else "1",
            u.species,
            u.object_id,
            u.note,
            "",
            (u.audit_pass if audited else ""),
            u.category,
            u.lat,
            u.lon,
            "Unit Price",
            {"@sourceFormat": "DataObjectGeometry", "type": "LineString",
             "coordinates": u.geometry},
        ]
        if extra:
            row += [u.span_m, u.planner.username]
        return row

    # ----------------------------------------------------------------------------- truth
    def circuits_truth(self, statuses=protocol.SYNCED_STATUSES, regions=None) -> list[dict]:
        """Every job listed now in one of ``statuses``, as clean typed values."""
        now = self._now_ms()
        out = []
        for group in self._groups_at(now):
            if not self._region_ok(group.region, regions):
                continue
            for job in group.jobs:
                t = job.observed(now)
                status = job.status_at(t)
                if status not in statuses:
                    continue
                miles_planned, percent = self._progress(job, t, status)
                out.append({
                    "job_guid": job.guid,
                    "work_order": job.work_order,
                    "extension": job.ext,
                    "parent_job_guid": job.parent_guid,
                    "job_type": job.job_type,
                    "status": status,
                    "region": job.region,
                    "title": job.title,
                    "total_miles": job.total_miles,
                    "miles_planned": miles_planned,
                    "percent_complete": percent,
                    "contractor": job.contractor,
                    "taken_by": job.planner.username,
                    "forester": job.planner.name,
                    "cycle_type": job.cycle_type,
                    "work_plan_start": job.wp_start,
                    "edit_time": _ms_datetime(job.edit_ms(t)),
                    "version": job.version(t),
                    "total_units": job.n_units,
                    "visible_units": job.visible_units(t),
                })
        out.sort(key=lambda c: (c["work_order"], c["extension"] != "@", c["extension"]))
        return out

    def units_truth(self, job_guid: str) -> list[dict]:
        """Units of one job visible now: deduplicated, sorted by unit_id, clean values."""
        t = self._now_ms()
        key = self._by_guid.get(job_guid)
        if key is None:
            self._groups_at(t)
            key = self._by_guid.get(job_guid)
            if key is None:
                raise KeyError(job_guid)
        job = self._job(key)
        t = job.observed(t)
        out = []
        for u in self._job_units(job):
            if u.sync_ms > t:
                continue
            perm = self._permission(u, t).strip() or None
            audited = u.audit_ms is not None and t >= u.audit_ms
            out.append({
                "unit_id": u.object_id,
                "work_order": job.work_order,
                "extension": job.ext,
                "station": u.station,
                "unit_code": u.code,
                "permission": perm,
                "linear_ft": u.linear_ft,
                "acres": u.acres,
                "trees": u.trees,
                "forester": u.planner.name,
                "forester_user": u.planner.username,
                "assessed_date": _day_date(u.day),
                "span_length_m": u.span_m,
                "audit_date": _ms_datetime(u.audit_ms).date() if audited else None,
            })
        out.sort(key=lambda r: r["unit_id"])
        return out
