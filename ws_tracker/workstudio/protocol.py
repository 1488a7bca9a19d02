"""The DDOProtocol as the real WorkStudio speaks it: view GUIDs, filters and headings.

Shared by the client (which must understand these shapes) and the simulator (which must
produce them). Pure constants: no I/O. See ../shared/spec/workstudio-api.md.
"""

from __future__ import annotations

CIRCUIT_LIST_VIEW = "{A856F956-88DF-4807-90E2-7E12C25B5B32}"
PLANNED_UNITS_VIEW = "{985AECEF-D75B-40F3-9F9B-37F21C63FF4A}"

CIRCUIT_FILTER_NAME = "By Job Status"
PLANNED_UNITS_FILTER_NAME = "WO#"
PLANNED_UNITS_FILTER_CAPTION = "WO Number"

STATUS_CAPTIONS = {
    "SA": "New",
    "ACTIV": "In Progress",
    "QC": "QC",
    "REWRK": "Rework",
    "DEF": "Deferral",
    "CLOSE": "Closed",
}
# The statuses the pipeline syncs, in the order a daily run fetches them.
SYNCED_STATUSES = ("ACTIV", "QC", "REWRK", "CLOSE")

# Circuit list view: 48 columns in reality. The ones the pipeline reads come first; the rest
# are carried in api_data_json (minus the bounds polygon, which is not worth storing).
CIRCUIT_LIST_HEADING = [
    "SS_JOBGUID",
    "SS_WO",
    "SS_EXT",
    "SS_TITLE",
    "WSREQ_STATUS",
    "SS_JOBTYPE",
    "VEGJOB_CYCLETYPE",
    "REGION",
    "VEGJOB_LENGTH",
    "VEGJOB_LENGTHCOMP",
    "VEGJOB_PRCENT",
    "VEGJOB_CONTRACTOR",
    "VEGJOB_FORESTER",
    "SS_TAKENBY",
    "SS_ASSIGNEDTO",
    "SS_EDITDATE",
    "WSREQ_VERSION",
    "WSREQ_SYNCHVERSN",
    "WPStartDate_Assessment_Xrefs_WP_STARTDATE",
    "SS_PJOBGUID",
    "VEGJOB_LINENAME",
    "VEGJOB_COMMENTS",
    "VEGJOB_COSTMETHOD",
    "VEGJOB_OPCO",
    "VEGJOB_SERVCOMP",
    "SS_SKETCHBOUNDS",
    "SS_JOBBOUNDS",
]
# Columns never stored (large geometry).
CIRCUIT_LIST_DROPPED = frozenset({"SS_JOBBOUNDS"})

PLANNED_UNITS_HEADING = [
    "VEGJOB_REGION",
    "VEGJOB_CYCLETYPE",
    "WPStartDate_Assessment_Xrefs_WP_STARTDATE",
    "SS_WO",
    "SS_EXT",
    "VEGSTAT_LINENAME",
    "LineIDLookup_FeederID",
    "STATIONS_STATNAME",
    "UNITS_DESCRIPTIO",
    "VEGUNIT_REMOVCAT",
    "VEGUNIT_FORESTER",
    "VEGUNIT_ASSDDATE",
    "VEGUNIT_PERMSTAT",
    "VEGJOB_CONTRACTOR",
    "JOBVEGETATIONUNITS_NUMTREES",
    "JOBVEGETATIONUNITS_LENGTHWRK",
    "JOBVEGETATIONUNITS_ACRES",
    "VEGSTAT_FROMSTR",
    "VEGSTAT_TOSTR",
    "VEGUNIT_UNIT",
    "VEGUNIT_AUDIT_USER",
    "VEGUNIT_AUDITOR",
    "VEGUNIT_AUDITDATE",
    "VEGUNIT_AUDIT_FAIL_HIST",
    "VEGUNIT_SPECIES",
    "SSUNITS_OBJECTID",
    "VEGUNIT_ASSNOTE",
    "VEGUNIT_PARCELCOMMENTS",
    "VEGUNIT_AUDIT_PASS",
    "VEGUNIT_UNIT_CLASS",
    "VEGUNIT_ASSLAT",
    "VEGUNIT_ASSLONG",
    "VEGUNIT_COSTMETHOD",
    "SSUNITS_GEOMETRY",
]
# Optional columns some deployments add to the planned-units view.
PLANNED_UNITS_OPTIONAL = ("STATIONS_SPANLGTH", "VEGUNIT_FRSTR_USER")

# Columns the pipeline reads. A response whose heading lacks one is a schema change in the
# view: the call fails loudly (naming the columns) before anything is written, rather than
# every row being stored with NULLs.
CIRCUIT_LIST_REQUIRED = tuple(CIRCUIT_LIST_HEADING[:20])
PLANNED_UNITS_REQUIRED = (
    "SS_WO", "SS_EXT", "STATIONS_STATNAME", "UNITS_DESCRIPTIO", "VEGUNIT_REMOVCAT",
    "VEGUNIT_FORESTER", "VEGUNIT_ASSDDATE", "VEGUNIT_PERMSTAT", "JOBVEGETATIONUNITS_NUMTREES",
    "JOBVEGETATIONUNITS_LENGTHWRK", "JOBVEGETATIONUNITS_ACRES", "VEGSTAT_FROMSTR", "VEGSTAT_TOSTR",
    "VEGUNIT_UNIT", "VEGUNIT_AUDIT_USER", "VEGUNIT_AUDITOR", "VEGUNIT_AUDITDATE",
    "VEGUNIT_AUDIT_FAIL_HIST", "VEGUNIT_SPECIES", "SSUNITS_OBJECTID", "VEGUNIT_ASSNOTE",
    "VEGUNIT_PARCELCOMMENTS", "VEGUNIT_AUDIT_PASS", "VEGUNIT_UNIT_CLASS", "VEGUNIT_ASSLAT",
    "VEGUNIT_ASSLONG", "VEGUNIT_COSTMETHOD",
)


def circuit_list_request(status: str) -> dict:
    """The GETVIEWDATA body that lists circuits of one job status."""
    return {
        "Protocol": "GETVIEWDATA",
        "ViewDefinitionGuid": CIRCUIT_LIST_VIEW,
        "ViewFilter": {
            "FilterName": CIRCUIT_FILTER_NAME,
            "FilterValue": status,
            "FilterCaption": STATUS_CAPTIONS.get(status, status),
            "PersistFilter": True,
            "ClassName": "TViewFilter",
        },
        "ResultFormat": "DDOTable",
    }


def planned_units_request(work_order: str) -> dict:
    """The GETVIEWDATA body that lists the planned units of one work order (all its jobs)."""
    return {
        "Protocol": "GETVIEWDATA",
        "ViewDefinitionGuid": PLANNED_UNITS_VIEW,
        "ViewFilter": {
            "FilterName": PLANNED_UNITS_FILTER_NAME,
            "FilterValue": work_order,
            "FilterCaption": PLANNED_UNITS_FILTER_CAPTION,
            "PersistFilter": True,
            "ClassName": "TViewFilter",
        },
        "ResultFormat": "DDOTable",
    }
