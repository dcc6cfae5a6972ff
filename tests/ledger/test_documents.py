"""Issue 14, documents and data: DCSA eBL 3.0 schema validation, the project's own limits,
personal information per PIPL as genesis data, to-order documents naming a consignee,
UN/LOCODE and vessel-sharing partners in the shipped-on-board check.

Every story runs on a ledger (tests.ledger.helpers.Net: invariants after every block).
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import jsonschema
import pytest

from consortium import limits
from consortium.genesis import default_privacy
from consortium.ledger import builders, dcsa
from tests.ledger.helpers import GENESIS, Net, example

# An independent validator (the `jsonschema` library, not the ledger's compiled one) over
# the OpenAPI file the package ships: the reference the tests hold the ledger to.
_OPENAPI = json.loads(dcsa.schema_text())
_TD_SCHEMA = {"$schema": "http://json-schema.org/draft-04/schema#",
              "$ref": "#/components/schemas/TransportDocument", "components": _OPENAPI["components"]}
REFERENCE = jsonschema.Draft4Validator(_TD_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)


def schema_errors(doc: dict[str, Any]) -> list[str]:
    return [f"{e.json_path} {e.validator}" for e in REFERENCE.iter_errors(doc)]


def _doc(reference: str, containers: list[str], **kw: Any) -> dict[str, Any]:
    return builders.transport_document(reference, carrier_code="HPCS", shipper="sh-exporter",
                                       consignee=kw.pop("consignee", "hk-importer"), endorsee=kw.pop("endorsee", None),
                                       equipment=containers, port_of_loading=kw.pop("pol", "CNSHA"),
                                       port_of_discharge="HKHKG", on_board_date=kw.pop("date", "2026-03-02"))


def _load(net: Net, carrier: str, containers: list[str], unloc: str = "CNSHA", date: str = "2026-03-02",
          tag: str = "") -> None:
    events = [builders.load_event(f"load-{tag}{c}", c, unloc, f"{date}T08:00:00+08:00") for c in containers]
    for i in range(0, len(events), limits.events_per_tx_max):
        net.ok("CARGO_EVENT", carrier, builders.events_body(events[i:i + limits.events_per_tx_max]))


def _container(n: int) -> str:
    return f"TSTU{n:07d}"


# ------------------------------------------------------------------ gap 2: the DCSA schema


def test_our_examples_and_generated_documents_validate_against_the_shipped_dcsa_schema() -> None:
    """The shipped examples and the builders' documents are valid DCSA eBL 3.0.3 transport
    documents, checked by the reference `jsonschema` validator; and the shipped OpenAPI file
    is the DCSA original (where ../shared/dcsa is present)."""
    for name in ("transport-document-straight.json", "transport-document-to-order.json"):
        assert schema_errors(example(name)) == [], name
    assert schema_errors(_doc("GEN0001", [_container(1), _container(2)])) == []
    assert schema_errors(_doc("GEN0002", [_container(1)], consignee=None, endorsee="sh-exporter")) == []


def test_a_description_of_goods_line_over_35_characters_is_refused_naming_path_and_rule() -> None:
    """DCSA limits each descriptionOfGoods line to 35 characters: a 400-character line is
    refused (BENV) and the refusal names the JSON path and the schema rule (maxLength)."""
    net = Net()
    net.load_examples()
    doc = example("transport-document-straight.json", "HPCSDESC01")
    doc["consignmentItems"][0]["descriptionOfGoods"] = ["x" * 400]
    result = net.do("ISSUE", "carrier-sh", builders.issue_body(doc, "sh-exporter", consignee="hk-importer"),
                    validate=False)
    assert result.code == "BENV", result
    assert "$.consignmentItems[0].descriptionOfGoods[0]" in result.detail and "maxLength" in result.detail
    assert result.detail.startswith("DCSA-SCHEMA")


def test_schema_valid_documents_beyond_the_old_project_limits_are_accepted() -> None:
    """A DCSA-valid document with 65 containers (the old 64-container limit) and a JSON text
    over 60,000 characters (the old limit) becomes an eBL: the only size bound left is the
    transaction's (limits.tx_bytes_max), stated in docs/LEDGER.md."""
    net = Net()
    containers = [_container(n) for n in range(1, 66)]
    _load(net, "carrier-sh", containers)
    doc = _doc("BIG0000001", containers)
    text = builders.document_text(doc)
    doc["termsAndConditions"] = "T" * (61_000 - len(text) + len(doc["termsAndConditions"]))
    assert 60_000 < len(builders.document_text(doc)) < limits.tx_bytes_max - 1_000
    assert schema_errors(doc) == []
    ebl = net.issue(doc, "carrier-sh", "sh-exporter", consignee="hk-importer")
    assert net.ebl(ebl)["status"] == "ISSUED"


# ------------------------------------------------------------------ gap 3: PIPL


def _with_shipper(**fields: Any) -> dict[str, Any]:
    doc = example("transport-document-straight.json", "HPCSPIPL01")
    doc["documentParties"]["shipper"].update(fields)
    return doc


DESK = [{"name": "Export desk", "email": "export-desk@minhang-electronics.example"}]


def test_a_shanghai_company_with_a_desk_email_is_accepted_a_natural_person_is_not() -> None:
    """PIPL: a mainland company's business contact details (a desk e-mail) may be on the
    ledger; a mainland natural person's identifiers may not (PII): they travel only sealed
    under consent (DATA_SHARE). The refusal names the party and the policy category."""
    net = Net()
    net.load_examples()
    company = _with_shipper(partyContactDetails=DESK)
    assert net.do("ISSUE", "carrier-sh", builders.issue_body(company, "sh-exporter", consignee="hk-importer")
                  ).code == "OK"
    person = _with_shipper(typeOfPerson="NATURAL_PERSON", partyName="Li Wei")
    person["transportDocumentReference"] = "HPCSPIPL02"
    result = net.do("ISSUE", "carrier-sh", builders.issue_body(person, "sh-exporter", consignee="hk-importer"),
                    validate=False)
    assert result.code == "PII" and "documentParties.shipper" in result.detail
    assert "natural_person" in result.detail


def test_the_privacy_policy_is_genesis_data_per_jurisdiction() -> None:
    """The policy is data in the genesis: a consortium whose CN-SH policy refuses business
    contacts refuses the same desk e-mail (PII); the default genesis allows it; one whose
    policy allows mainland natural persons accepts one (and its invariant check judges the
    state by that policy, not the default); a Hong Kong natural person is allowed under
    the HK policy by default."""
    strict = default_privacy()
    strict["CN-SH"]["business_contact"] = "PII"
    net = Net(replace(GENESIS, privacy=strict))
    net.load_examples()
    company = _with_shipper(partyContactDetails=DESK)
    result = net.do("ISSUE", "carrier-sh", builders.issue_body(company, "sh-exporter", consignee="hk-importer"),
                    validate=False)
    assert result.code == "PII" and "business_contact" in result.detail
    assert GENESIS.privacy["CN-SH"]["business_contact"] == "ALLOW"
    assert GENESIS.to_dict()["privacy"] == default_privacy()
    lenient = default_privacy()
    lenient["CN-SH"]["natural_person"] = "ALLOW"
    net3 = Net(replace(GENESIS, privacy=lenient))  # its blocks check the invariants under this policy
    net3.load_examples()
    person = _with_shipper(typeOfPerson="NATURAL_PERSON", partyName="Li Wei")
    assert net3.do("ISSUE", "carrier-sh", builders.issue_body(person, "sh-exporter", consignee="hk-importer"),
                   validate=False).code == "OK"
    hk_person = example("transport-document-straight.json", "HPCSPIPL03")
    hk_person["documentParties"]["consignee"]["typeOfPerson"] = "NATURAL_PERSON"
    net2 = Net()
    net2.load_examples()
    assert net2.do("ISSUE", "carrier-sh", builders.issue_body(hk_person, "sh-exporter", consignee="hk-importer")
                   ).code == "OK"


# ------------------------------------------------------------------ gap 8: to-order + consignee


def test_a_to_order_document_naming_a_consignee_is_refused_saying_what_is_wrong() -> None:
    """A to-order document (isToOrder true) that names a consignee is refused (BENV) with a
    message about that: the to-order document, its consignee and where a to-order bill's
    holder is named (endorsee) - not a message about straight bills."""
    net = Net()
    net.load_examples()
    doc = example("transport-document-to-order.json", "HPCSORD01")
    parties = doc["documentParties"]
    parties["consignee"] = copy.deepcopy(parties.pop("endorsee"))
    for consignee in (None, "sh-exporter"):
        result = net.do("ISSUE", "carrier-sh", builders.issue_body(doc, "sh-exporter", consignee=consignee),
                        validate=False)
        assert result.code == "BENV", result
        assert "straight" not in result.detail, result.detail
        assert "isToOrder" in result.detail and "documentParties.consignee" in result.detail
        assert "endorsee" in result.detail


# ------------------------------------------------------------------ gap 9: UN/LOCODE and partners


def test_a_shipped_on_board_document_needs_a_un_locode_port_of_loading() -> None:
    """Without a UN/LOCODE for the port of loading a LOAD event at any port would satisfy the
    shipped-on-board check: such a document is refused (BENV, rule SOB-POL-UNLOC) even with
    a LOAD event elsewhere; received-for-shipment documents need none."""
    net = Net()
    _load(net, "carrier-sh", [_container(7)], unloc="HKHKG")
    doc = _doc("NOLOC00001", [_container(7)])
    doc["transports"]["portOfLoading"] = {"locationName": "Shanghai"}
    assert schema_errors(doc) == []
    result = net.do("ISSUE", "carrier-sh", builders.issue_body(doc, "sh-exporter", consignee="hk-importer"),
                    validate=False)
    assert result.code == "BENV" and "SOB-POL-UNLOC" in result.detail, result
    received = builders.transport_document("NOLOC00002", carrier_code="HPCS", shipper="sh-exporter",
                                           consignee="hk-importer", endorsee=None, equipment=[_container(8)],
                                           port_of_loading="CNSHA", port_of_discharge="HKHKG", on_board_date=None,
                                           received_date="2026-03-01")
    received["transports"]["portOfLoading"] = {"locationName": "Shanghai"}
    net.issue(received, "carrier-sh", "sh-exporter", consignee="hk-importer")


def test_load_events_of_a_declared_vessel_sharing_partner_count_at_the_port_of_loading() -> None:
    """Vessel sharing: carrier-hk loads the container; carrier-sh's on-board document needs
    an agreement on the ledger (VSA_DECLARE) before carrier-hk's LOAD counts: MDOC before,
    OK after. A partner's LOAD at another port does not count (LOAD_MISMATCH); a partner
    must be a registered carrier; only a carrier declares (ROLE)."""
    net = Net()
    _load(net, "carrier-hk", [_container(11)])
    _load(net, "carrier-hk", [_container(12)], unloc="HKHKG")
    first = builders.issue_body(_doc("VSA0000001", [_container(11)]), "sh-exporter", consignee="hk-importer")
    assert net.do("ISSUE", "carrier-sh", first).code == "MDOC"
    assert net.do("VSA_DECLARE", "carrier-sh", {"vsa_id": "VSA-1", "partners": ["bank-hk"]}).code == "BENV"
    assert net.do("VSA_DECLARE", "bank-hk", {"vsa_id": "VSA-1", "partners": ["carrier-hk"]}).code == "ROLE"
    net.ok("VSA_DECLARE", "carrier-sh", {"vsa_id": "VSA-1", "partners": ["carrier-hk"]})
    assert net.do("VSA_DECLARE", "carrier-sh", {"vsa_id": "VSA-1", "partners": ["carrier-hk"]}).code == "DUPE"
    assert net.do("ISSUE", "carrier-sh", first).code == "OK"
    other_port = builders.issue_body(_doc("VSA0000002", [_container(12)]), "sh-exporter", consignee="hk-importer")
    assert net.do("ISSUE", "carrier-sh", other_port).code == "LOAD_MISMATCH"
    # the agreement is carrier-sh's statement: carrier-hk's own documents do not use carrier-sh's events
    _load(net, "carrier-sh", [_container(13)], tag="sh-")
    theirs = builders.issue_body(_doc("VSA0000003", [_container(13)]), "sh-exporter", consignee="hk-importer")
    assert net.do("ISSUE", "carrier-hk", theirs).code == "MDOC"


def test_a_refusal_of_a_document_names_a_project_rule_listed_in_the_docs() -> None:
    """Every project rule a document refusal can name is listed in docs/LEDGER.md with its
    reason code (the table "article -> rule -> reason code -> test")."""
    from tests.conftest import ROOT
    text = (ROOT / "docs" / "LEDGER.md").read_text(encoding="utf-8")
    for rule in dcsa.RULES:
        assert f"`{rule}`" in text, rule


def test_the_shipped_openapi_file_is_the_dcsa_original() -> None:
    """consortium/ledger/schema/EBL_v3.0.3.json is the DCSA eBL 3.0.3 OpenAPI YAML, only
    converted to JSON (compared with ../shared/dcsa/spec where present)."""
    from tests.conftest import SHARED_DCSA
    original = SHARED_DCSA / "spec" / "EBL_v3.0.3.yaml"
    if not original.is_file():
        pytest.skip(f"{original} is absent (the DCSA originals are not on this machine)")
    yaml = pytest.importorskip("yaml")
    assert json.loads(dcsa.schema_text()) == yaml.safe_load(original.read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["transport-document-straight.json", "transport-document-to-order.json"])
def test_the_shipped_example_lines_keep_dcsa_limits(name: str) -> None:
    """The fix of the shipped example: every descriptionOfGoods line is at most 35 characters."""
    for item in example(name)["consignmentItems"]:
        assert all(len(line) <= 35 for line in item["descriptionOfGoods"])
