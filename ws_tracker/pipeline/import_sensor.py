"""The import folder: dropping a WorkStudio export into WS_TRACKER_IMPORT_DIR is enough.

- import_folder_sensor: every 30 s, lists ``*.csv`` in the folder (not in sub-folders; names
  starting with "." or "~" and files modified in the last few seconds, still being written,
  wait for a later tick). A new or changed file is hashed (SHA-256 of its bytes) and gets one
  ``import_file`` run with run key = the content hash, so the same content is never committed
  twice by the sensor, whatever its name (an undated file's key is ``<hash>:undated``: its run
  only records the failure, and the same content renamed with a date still gets imported).
  Circuit lists are requested before planned units, older days before newer ones (units need
  their circuits). Runs may still start in another
  order: a planned-units run whose circuits are in a not-yet-imported circuit list of the same
  day in the folder retries (every 30 s, 10 times) until that list is in.
- Kind: from the heading (SS_JOBGUID -> circuits, SSUNITS_OBJECTID -> planned_units), else the
  name ("circuit" / "unit"). As-of date: the last YYYY-MM-DD in the file name
  (``circuits_2026-03-02.csv``). A file without one still gets its run, which records a failed
  import saying so (data_imports, status failed): never silently ignored.
- import_file_job: one op that calls the same commit path as `ws-tracker import commit`
  (trace id = the Dagster run id) and fails the run when the import failed.

The cursor is a JSON map {file name: "size:mtime_ns"} of the files already requested, so an
unchanged file is not even re-hashed on the next tick.
"""

# No ``from __future__ import annotations``: Dagster reads the Config annotations at
# definition time.
import json
import os
import time
from datetime import date
from pathlib import Path
from typing import Optional

import dagster as dg

from ws_tracker.imports.reader import ImportFileError, as_of_from_name, detect_kind, file_digest
from ws_tracker.warehouse.resource import WarehouseResource

ENV_IMPORT_DIR = "WS_TRACKER_IMPORT_DIR"
IMPORT_SENSOR_INTERVAL_SECONDS = 30
# A file modified this recently may still be being copied in: wait for a later tick.
SETTLE_SECONDS = 5.0
MAX_FILES_PER_TICK = 50
IMPORT_FILE_TAG = "ws_tracker/import_file"
IMPORT_HASH_TAG = "ws_tracker/import_content_hash"
_KIND_ORDER = {"circuits": 0, "planned_units": 1, None: 2}


class ImportFileConfig(dg.Config):
    path: str
    kind: Optional[str] = None  # None: from the heading or the name
    as_of: Optional[str] = None  # YYYY-MM-DD; None: a failed import, "no as-of date"
    content_hash: Optional[str] = None  # as the sensor saw it (the run key)
    # Planned units whose circuits are in a circuit list of the same day lying in the same
    # folder, not imported yet (its run is queued behind this one): retry this many times.
    wait_for_circuits_retries: int = 10
    wait_for_circuits_seconds: float = 30.0


def circuits_pending(engine, units_path: str, as_of: Optional[date]) -> list[str]:
    """Circuit-list exports of the same as-of day beside ``units_path`` whose content has not
    been imported (transformed) yet: the planned units of that day wait for them."""
    import sqlalchemy as sa

    if as_of is None:
        return []
    folder = Path(units_path).parent
    pending = []
    for entry in _candidates(folder):
        try:
            if detect_kind(entry.path) != "circuits" or as_of_from_name(entry.name) != as_of:
                continue
        except ImportFileError:
            continue
        digest, _ = file_digest(entry.path)
        with engine.connect() as conn:
            done = conn.execute(sa.text(
                "SELECT 1 FROM data_imports WHERE kind = 'circuits' AND content_hash = :h"
                " AND status = 'transformed'"), {"h": digest}).first()
        if done is None:
            pending.append(entry.name)
    return pending


@dg.op(description="Stage, validate and load one WorkStudio export (ws-tracker import "
       "commit); data_imports records the outcome. Fails the run when the import failed.")
def import_file(context: dg.OpExecutionContext, config: ImportFileConfig,
                warehouse: WarehouseResource) -> dg.Output:
    from ws_tracker.imports.service import commit_file

    as_of = date.fromisoformat(config.as_of) if config.as_of else None
    sensor = context.run.tags.get("dagster/sensor_name")
    result = commit_file(warehouse.get_engine(), config.path, kind=config.kind, as_of=as_of,
                         imported_by=f"sensor:{sensor}" if sensor else "dagster",
                         source="sensor" if sensor else "dagster", run_id=context.run_id)
    if config.content_hash and result.content_hash != config.content_hash:
        context.log.warning(f"{result.file} changed after the sensor saw it: imported content "
                            f"{result.content_hash[:12]}..., the run key names "
                            f"{config.content_hash[:12]}...")
    metrics = result.summary.get("metrics", {})
    unknown = metrics.get("issues_by_code", {}).get("unknown_circuit", 0)
    if result.kind == "planned_units" and unknown and \
            context.retry_number < config.wait_for_circuits_retries:
        waiting = circuits_pending(warehouse.get_engine(), config.path, as_of)
        if waiting:
            # Runs may start in any order: the day's circuit list is still to be imported.
            # This file's rows are replaced by the retry (a re-import of the same file).
            context.log.warning(f"{unknown} unit row(s) name circuits not imported yet; "
                                f"waiting for {', '.join(waiting)}")
            raise dg.RetryRequested(max_retries=config.wait_for_circuits_retries,
                                    seconds_to_wait=config.wait_for_circuits_seconds)
    metadata = {"data_import_id": dg.MetadataValue.int(result.import_id or 0),
                "status": result.status, "file": result.file, "kind": result.kind,
                "as_of": str(result.as_of), "content_hash": result.content_hash,
                **{k: dg.MetadataValue.int(v) for k, v in metrics.items()
                   if isinstance(v, int) and not isinstance(v, bool)}}
    if not result.ok:
        err = result.error or {}
        raise dg.Failure(description=f"import of {result.file} failed [{err.get('code')}]: "
                         f"{err.get('message')}", metadata=metadata)
    return dg.Output(result.import_id, metadata=metadata)


@dg.job(name="import_file_job", description="Import one WorkStudio export file (circuits or "
        "planned units) as captures dated its as-of day, through the same path as `ws-tracker "
        "import commit`. Launched by import_folder_sensor; run config: path, kind, as_of.")
def import_file_job():
    import_file()


def _candidates(folder: Path) -> list[os.DirEntry]:
    return sorted((e for e in os.scandir(folder)
                   if e.is_file() and e.name.lower().endswith(".csv")
                   and not e.name.startswith((".", "~"))), key=lambda e: e.name)


def _signature(entry: os.DirEntry) -> str:
    st = entry.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


@dg.sensor(
    name="import_folder_sensor",
    job=import_file_job,
    minimum_interval_seconds=IMPORT_SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Commits each new WorkStudio export dropped into $WS_TRACKER_IMPORT_DIR "
    "(name it ..._YYYY-MM-DD.csv: the as-of day) through `ws-tracker import commit`'s path; run "
    "key = the file's SHA-256, so the same content is never committed twice by the sensor.",
)
def import_folder_sensor(context: dg.SensorEvaluationContext):
    folder = os.environ.get(ENV_IMPORT_DIR)
    if not folder:
        return dg.SkipReason(f"{ENV_IMPORT_DIR} is not set: no import folder to watch")
    path = Path(folder)
    if not path.is_dir():
        return dg.SkipReason(f"{ENV_IMPORT_DIR}={folder} is not a directory")
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    found = []
    waiting = 0
    for entry in _candidates(path):
        signature = _signature(entry)
        if seen.get(entry.name) == signature:
            continue
        if now - entry.stat().st_mtime < SETTLE_SECONDS:
            waiting += 1  # still being written, perhaps: next tick
            continue
        found.append((entry, signature))
    requests = []
    described = []
    for entry, signature in found[:MAX_FILES_PER_TICK]:
        try:
            digest, _size = file_digest(entry.path)
        except OSError as exc:  # removed or unreadable since the listing: next tick
            context.log.warning(f"{entry.name}: cannot read it now ({exc}); retried next tick")
            continue
        kind = detect_kind(entry.path)
        try:
            as_of = as_of_from_name(entry.name)
        except ImportFileError:
            as_of = None  # the run records a failed import naming the bad date
        described.append((as_of or date.min, _KIND_ORDER[kind], entry.name, entry.path, kind,
                          as_of, digest))
        seen[entry.name] = signature
    for _, _, name, file_path, kind, as_of, digest in sorted(described):
        requests.append(dg.RunRequest(
            # The content hash: the same file is never committed twice by the sensor, whatever
            # its name. An undated file's run only records its failure; its own key lets the
            # same content, renamed with a date, be imported.
            run_key=digest if as_of else f"{digest}:undated",
            run_config={"ops": {"import_file": {"config": {
                "path": file_path, "kind": kind, "as_of": as_of.isoformat() if as_of else None,
                "content_hash": digest}}}},
            tags={IMPORT_FILE_TAG: name[:200], IMPORT_HASH_TAG: digest},
        ))
    # Files that disappeared leave the cursor (it stays as small as the folder).
    present = {e.name for e in _candidates(path)}
    cursor = json.dumps({k: v for k, v in sorted(seen.items()) if k in present})
    if not requests:
        return dg.SensorResult(cursor=cursor, skip_reason=(
            f"no new export in {folder}"
            + (f" ({waiting} still being written)" if waiting else "")))
    return dg.SensorResult(run_requests=requests, cursor=cursor)


IMPORT_SENSORS = [import_folder_sensor]
IMPORT_JOBS = [import_file_job]
