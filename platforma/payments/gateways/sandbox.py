"""The demo's gateway: a payer's page inside the instance, notifications signed with HMAC-SHA256.

Only a demonstration instance may offer it (config: `demo = true`); it moves no money. Its notification
goes through the same webhook code as a real gateway's, so the demo shows the real flow: pending until
the notification, then confirmed and posted.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Mapping
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from platforma.core.registry import registry
from platforma.payments.gateways.base import (
    GatewayReport,
    InvalidSignature,
    MalformedNotification,
    PaymentGateway,
    PaymentRequest,
    Registration,
)

OUTCOMES = {"confirmed", "failed", "cancelled"}


class SandboxOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: the HMAC key of the sandbox's notifications
    secret: str = "piaskownica-platformy"


@registry.register
class SandboxGateway(PaymentGateway):
    id: ClassVar[str] = "sandbox"
    name: ClassVar[str] = "Piaskownica (demonstracja, bez pieniędzy)"
    Options = SandboxOptions

    def register(self, request: PaymentRequest) -> Registration:
        # the payer's page lives in the instance: /platnosci/piaskownica/<reference>
        base = request.return_url.split("/platnosci/", 1)[0]
        return Registration(f"{base}/platnosci/piaskownica/{quote(request.reference)}", f"SBX-{request.reference}")

    def sign(self, body: bytes) -> str:
        return base64.b64encode(hmac.new(self.options.secret.encode(), body, hashlib.sha256).digest()).decode()

    def notification(self, reference: str, amount: Decimal, outcome: str) -> tuple[dict[str, str], bytes]:
        body = json.dumps({"reference": reference, "amount": str(amount), "outcome": outcome,
                           "transaction": f"SBX-{reference}"}, separators=(",", ":")).encode()
        return {"Content-Type": "application/json", "Signature": self.sign(body)}, body

    def parse_notification(self, headers: Mapping[str, str], body: bytes, remote_addr: str) -> GatewayReport:
        given = headers.get("Signature", "")
        if not hmac.compare_digest(given.encode(), self.sign(body).encode()):
            raise InvalidSignature("piaskownica: podpis powiadomienia się nie zgadza")
        try:
            data = json.loads(body)
            outcome = data["outcome"]
            if outcome not in OUTCOMES:
                raise ValueError(outcome)
            return GatewayReport(reference=str(data["reference"]), outcome=outcome,
                                 gateway_txn_id=str(data["transaction"]), amount=Decimal(str(data["amount"])),
                                 details={"outcome": outcome})
        except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
            raise MalformedNotification(f"piaskownica: nieczytelne powiadomienie ({exc.__class__.__name__})") from None
