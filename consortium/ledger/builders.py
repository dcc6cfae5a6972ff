"""Client-side helpers: build tx bodies the ledger accepts, seal and open shared data.

Nothing here runs inside apply_block. Sealing uses libsodium's randomness for
the ephemeral key (consortium.crypto.seal): it is an act of a client, and the
ledger only ever stores the sealed bytes.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.signing

from consortium import crypto
from consortium.errors import LocalError
from consortium.ledger import dcsa

SALTED_HASH_DOMAIN = b"consortium/data/v1\x00"


# ------------------------------------------------------------------ eBL


def document_text(document: dict[str, Any] | str) -> str:
    """A document as the text an ISSUE carries: given text as is, a dict in RFC 8785 form."""
    if isinstance(document, str):
        return document
    return dcsa.canonical(document, "document").decode("utf-8")


def issue_body(document: dict[str, Any] | str, issue_to: str, *, consignee: str | None = None,
               endorsee: str | None = None, supersedes: str | None = None) -> dict[str, Any]:
    """ISSUE body with the checksum the ledger will recompute (PINT documentChecksum)."""
    text = document_text(document)
    return {"document": text, "checksum": dcsa.checksum_of(dcsa.load_json(text, "document")),
            "issue_to": issue_to, "consignee": consignee, "endorsee": endorsee, "supersedes": supersedes}


def ebl_id(document: dict[str, Any] | str) -> str:
    """The id of the eBL a document becomes: its PINT document checksum."""
    return dcsa.checksum_of(dcsa.load_json(document_text(document), "document"))


def with_reference(document: dict[str, Any], reference: str) -> dict[str, Any]:
    out = copy.deepcopy(document)
    out["transportDocumentReference"] = reference
    return out


def example_document(name: str, reference: str | None = None) -> dict[str, Any]:
    """One of our examples (transport-document-straight.json, ...-to-order.json) as a dict."""
    doc: dict[str, Any] = json.loads(dcsa.example(name))
    return with_reference(doc, reference) if reference is not None else doc


def transport_document(reference: str, *, carrier_code: str, shipper: str, consignee: str | None,
                       endorsee: str | None, equipment: list[str], port_of_loading: str,
                       port_of_discharge: str, on_board_date: str | None,
                       received_date: str | None = None) -> dict[str, Any]:
    """A compact DCSA eBL 3.0 transport document (every required field) for flows
    generated in bulk. `consignee` None makes it a to-order bill."""
    parties: dict[str, Any] = {
        "shipper": {"partyName": shipper, "identifyingCodes": [{"codeListProvider": "ZZZ", "partyCode": shipper}]},
        "issuingParty": {"partyName": carrier_code,  # DCSA requires the issuing party's address
                         "address": {"street": "Harbour Road", "city": port_of_loading,
                                     "countryCode": port_of_loading[:2]},
                         "identifyingCodes": [{"codeListProvider": "SMDG", "partyCode": carrier_code}]},
    }
    if consignee is not None:
        parties["consignee"] = {"partyName": consignee,
                                "identifyingCodes": [{"codeListProvider": "ZZZ", "partyCode": consignee}]}
    if endorsee is not None:
        parties["endorsee"] = {"partyName": endorsee,
                               "identifyingCodes": [{"codeListProvider": "ZZZ", "partyCode": endorsee}]}
    doc: dict[str, Any] = {
        "transportDocumentReference": reference, "transportDocumentStatus": "ISSUED",
        "transportDocumentTypeCode": "BOL", "isShippedOnBoardType": on_board_date is not None,
        "isElectronic": True, "isToOrder": consignee is None, "invoicePayableAt": {"UNLocationCode": port_of_loading},
        "partyContactDetails": [{"name": "Documentation desk", "email": "docs@carrier.example"}],
        "documentParties": parties,
        "consignmentItems": [{"carrierBookingReference": f"BK{reference}", "descriptionOfGoods": ["General cargo"],
                              "HSCodes": ["847130"],
                              "cargoItems": [{"equipmentReference": eq, "cargoGrossWeight": {"value": 10000, "unit": "KGM"},
                                              "outerPackaging": {"numberOfPackages": 100, "packageCode": "4G",
                                                                 "description": "Fibreboard boxes"}}
                                             for eq in equipment]}],
        "utilizedTransportEquipments": [{"isShipperOwned": False, "seals": [{"number": f"S-{eq}"}],
                                         "equipment": {"ISOEquipmentCode": "22G1", "equipmentReference": eq}}
                                        for eq in equipment],
        "termsAndConditions": "Generated example.", "receiptTypeAtOrigin": "CY", "deliveryTypeAtDestination": "CY",
        "cargoMovementTypeAtOrigin": "FCL", "cargoMovementTypeAtDestination": "FCL",
        "carrierCode": carrier_code, "carrierCodeListProvider": "SMDG",
        "transports": {"plannedDepartureDate": on_board_date or received_date,
                       "plannedArrivalDate": on_board_date or received_date,
                       "portOfLoading": {"UNLocationCode": port_of_loading},
                       "portOfDischarge": {"UNLocationCode": port_of_discharge},
                       "vesselVoyages": [{"vesselName": "Example Vessel", "carrierExportVoyageNumber": "001E"}]},
    }
    if on_board_date is not None:
        doc["shippedOnBoardDate"] = on_board_date
    else:
        doc["receivedForShipmentDate"] = received_date
    return doc


# ------------------------------------------------------------------ T&T events


def load_event(event_id: str, equipment: str, unloc: str, when: str, *, booking: str | None = None,
               document: str | None = None, classifier: str = "ACT") -> dict[str, Any]:
    """A DCSA T&T 3.0 equipment LOAD event (`when`: ISO 8601 with offset)."""
    event: dict[str, Any] = {
        "eventID": event_id, "eventDateTime": when,
        "eventLocation": {"UNLocationCode": unloc},
        "eventClassification": {"eventTypeCode": "EQUIPMENT", "eventClassifierCode": classifier,
                                "equipmentEventTypeCode": "LOAD"},
        "equipmentDetails": {"equipmentReference": equipment, "emptyIndicatorCode": "LADEN"},
    }
    refs = [{"typeCode": "BKG", "reference": booking}] if booking else []
    refs += [{"typeCode": "TRD", "reference": document}] if document else []
    if refs:
        event["shipmentDetails"] = {"documentReference": refs[0], "additionalDocumentReferences": refs[1:]}
    return event


def events_body(events: list[dict[str, Any]] | str) -> dict[str, Any]:
    """CARGO_EVENT body: a T&T payload text, or events wrapped as {"events": [...]}."""
    text = events if isinstance(events, str) else json.dumps({"events": events}, sort_keys=True)
    return {"events": text}


# ------------------------------------------------------------------ fingerprints and data


def fingerprint(document: Any) -> str:
    """Collateral fingerprint of a JSON document (invoice, PO, warehouse receipt):
    hex SHA-256 of its RFC 8785 form, like an eBL's checksum."""
    return dcsa.checksum_of(document)


def salted_hash(salt: bytes, payload: bytes) -> bytes:
    """What SDB attests: SHA-256 over a domain tag, a secret salt (>= 16 bytes) and the
    payload; the salt stays with the owner so the hash reveals nothing guessable."""
    assert len(salt) >= 16
    return crypto.digest(SALTED_HASH_DOMAIN + salt + payload)


def share_body(share_id: str, data_id: str, recipient: str, purpose: str, payload: bytes,
               recipient_key: bytes, regulator_key: bytes | None,
               ephemeral_seeds: tuple[bytes, bytes] | None = None) -> dict[str, Any]:
    """DATA_SHARE body: `payload` sealed to the recipient (and to HKMA when the
    recipient is a Hong Kong bank: pass HKMA's public key as `regulator_key`).

    Without `ephemeral_seeds` the sealed boxes use libsodium's randomness (real
    clients); with them the boxes are reproducible (simulations, see seal_with)."""
    def seal(key: bytes, i: int) -> bytes:
        if ephemeral_seeds is None:
            return crypto.seal(key, payload)
        return seal_with(key, payload, ephemeral_seeds[i])

    return {"share_id": share_id, "data_id": data_id, "recipient": recipient, "purpose": purpose,
            "sealed": seal(recipient_key, 0),
            "regulator_sealed": seal(regulator_key, 1) if regulator_key is not None else None}


def seal_with(recipient_key: bytes, payload: bytes, ephemeral_seed: bytes) -> bytes:
    """A libsodium-compatible sealed box (crypto.unseal opens it) whose ephemeral key
    comes from `ephemeral_seed`: byte-for-byte reproducible, for simulations that
    must replay. A real client uses crypto.seal; never reuse a seed."""
    assert len(ephemeral_seed) == 32
    try:
        curve = nacl.signing.VerifyKey(recipient_key).to_curve25519_public_key()
    except (nacl.exceptions.CryptoError, ValueError, TypeError) as exc:
        raise LocalError("recipient public key is not an Ed25519 key") from exc
    eph = nacl.public.PrivateKey(crypto.digest(b"consortium/seal-with/v1\x00" + ephemeral_seed))
    # libsodium crypto_box_seal: nonce = BLAKE2b-192(ephemeral pk || recipient pk)
    nonce = hashlib.blake2b(bytes(eph.public_key) + bytes(curve), digest_size=24).digest()
    return bytes(eph.public_key) + bytes(nacl.public.Box(eph, curve).encrypt(payload, nonce).ciphertext)


def open_share(keypair: crypto.KeyPair, sealed: bytes) -> bytes:
    """The recipient (or HKMA, for its copy) opens a shared payload."""
    return crypto.unseal(keypair, sealed)
