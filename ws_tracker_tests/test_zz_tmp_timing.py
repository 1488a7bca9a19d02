import time
from datetime import date, timedelta
from ws_tracker_tests.e2e import start_harness
import pytest

def test_t(db_url):
    h = start_harness(db_url, late_sync_rate=0.3, extra_unit_columns=True)
    try:
        for i in range(5):
            t=time.time(); assert h.run(date(2026,3,2)+timedelta(days=i)).success; print("run", i, time.time()-t)
    finally:
        h.server.stop()
