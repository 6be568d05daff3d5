from handover.adapters.staging import SqliteReportSorter
from handover.domain.freeze_policy import FreezePolicy
from handover.services import reporting

POLICY = FreezePolicy()

CSV = b"""event_id,number,event,occurred_at,subscriber,to_carrier
e1,+8613812345678,activated,2020-01-01,s1,
e2,+8613812345678,cancelled,2021-01-01,,
e3,+8613812345678,released,2021-05-01,,
e4,+8613812345678,activated,2021-06-01,s2,
"""


def test_a_file_builds_the_number_history(uow_factory, carriers):
    ingest = reporting.ingest_file(
        uow_factory, SqliteReportSorter, "cm", CSV.splitlines(True), policy=POLICY
    )
    assert ingest.summary() == {"accepted": 4, "duplicates": 0, "rejected": {}}
    with uow_factory() as uow:
        history = uow.numbers.history("+8613812345678")
    assert history is not None
    assert [t.subscriber for t in history.tenures] == ["s1", "s2"]
    assert history.tenures[0].end is not None and history.tenures[1].end is None
