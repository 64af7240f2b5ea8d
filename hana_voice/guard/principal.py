"""Whom a call speaks for, and whether its results may reach the front end (issue 11: anyone
could forge results by naming any patient in an anonymous browser call).

A :class:`Principal` is fixed at the handshake from the credential the connection showed:

- ``telephony`` / ``maqsam``: the provider's credential (TELEPHONY_TOKEN, MAQSAM_TOKEN);
- ``bearer``: VOICE_SERVICE_SECRET itself (server to server, /ws/secure*);
- ``token``: a short-lived token minted by ``GET /auth/token``, possibly bound to a patient,
  hospital and campaign (its *claims*);
- ``anonymous``: the open browser endpoints (the demo, the front end's voice tester).

Results are handed over only for the first three, and for tokens bound to a patient and a
hospital. A bound token answers only for its own patient: a call's context naming another
patient, hospital or campaign is refused (1008), and the claims fill what the context leaves
out. Anonymous calls are stored (``GET /calls/<id>`` shows them) and never handed over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hana_voice.errors import AuthError

__all__ = ["ANONYMOUS", "CLAIM_KEYS", "Principal", "claims_from"]

#: The call-context keys a browser token may be bound to.
CLAIM_KEYS = ("patient_id", "hospital_id", "campaign_id")
_MAX_CLAIM_LEN = 200


@dataclass(frozen=True)
class Principal:
    method: str
    claims: Mapping[str, str] = field(default_factory=dict)

    @property
    def may_hand_over(self) -> bool:
        if self.method in ("bearer", "maqsam", "telephony"):
            return True
        if self.method == "token":
            return bool(self.claims.get("patient_id") and self.claims.get("hospital_id"))
        return False

    def check_context(self, context: Mapping[str, Any]) -> None:
        """Refuse a context naming another patient/hospital/campaign than the token's."""
        for key, claimed in self.claims.items():
            given = context.get(key)
            if given is not None and str(given) != claimed:
                # Names the key, never the values: both are patient data.
                raise AuthError(f"the token is not valid for this call's {key}")

    def metadata(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The ids stored with the call: the token's claims first, then the context."""
        return {key: self.claims.get(key) or context.get(key) for key in CLAIM_KEYS}


ANONYMOUS = Principal("anonymous")


def claims_from(values: Mapping[str, Any]) -> dict[str, str]:
    """The claim keys present in ``values`` (token claims or /auth/token query arguments)."""
    claims: dict[str, str] = {}
    for key in CLAIM_KEYS:
        value = values.get(key)
        if isinstance(value, str) and value.strip():
            claims[key] = value.strip()[:_MAX_CLAIM_LEN]
    return claims
