"""Historical imports (issue 8): WorkStudio CSV exports in, with preview, validation, staging,
a status contract and lineage.

- reader: kinds, headings, as-of dates from file names, the streaming CSV reader
- validation: the live row transforms plus unknown codes/regions/circuits, row by row
- staging: the data_imports row and COPY batches into import_staging_rows
- status: processing -> queued -> transforming -> transformed | failed, and the summary JSON
- load: staged rows -> circuits/circuit_history/planned_units_snapshots, as a live sync stores
- service: preview_file and commit_file, the one path the CLI and the sensor share
- export: CSV files in WorkStudio's export shape (tests, benchmarks)
"""

from ws_tracker.imports.reader import KINDS, ImportFileError, as_of_from_name, detect_kind
from ws_tracker.imports.service import CommitResult, ImportBusy, Preview, commit_file, preview_file

__all__ = ["KINDS", "CommitResult", "ImportBusy", "ImportFileError", "Preview",
           "as_of_from_name", "commit_file", "detect_kind", "preview_file"]
