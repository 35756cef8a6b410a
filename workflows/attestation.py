"""Who decided, as the front door verified it: decisions from chat are signed by the bot.

The bot starts a run with its public key in the request and signs each decision it sends
(Ed25519, over the workflow id, the run id, who decided, the verdict, the reason and the groups
it verified). The workflow checks the signature before it records a chat identity; anything else
that claims to be a chat user (a `temporal workflow update` by hand, say) is recorded as what it
is: an operator with Temporal access. Verification is a pure function, so replay-safe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from workflows.models import ApplyDecision

_DOMAIN = "provision-decision/1"


def signed_text(workflow_id: str, run_id: str, decision: ApplyDecision) -> bytes:
    reason = hashlib.sha256(decision.reason.encode("utf-8", "surrogatepass")).hexdigest()
    fields = [
        _DOMAIN,
        workflow_id,
        run_id,
        decision.approver or "",
        decision.approver_name or "",
        decision.approver_kind or "",
        "1" if decision.is_approved else "0",
        reason,
        ",".join(sorted(decision.approver_groups)),
    ]
    return "\n".join(fields).encode("utf-8", "surrogatepass")


class DecisionSigner:
    """The bot's half: a key derived from a secret only the bot holds."""

    def __init__(self, secret: str) -> None:
        seed = hashlib.sha256(b"provision-decision-key:" + secret.encode()).digest()
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    @property
    def public_key(self) -> str:
        raw = self._key.public_key().public_bytes_raw()
        return base64.b64encode(raw).decode()

    def sign(self, workflow_id: str, run_id: str, decision: ApplyDecision) -> ApplyDecision:
        signature = self._key.sign(signed_text(workflow_id, run_id, decision))
        return decision.model_copy(update={"attestation": base64.b64encode(signature).decode()})


def verified(
    public_key: str | None, workflow_id: str, run_id: str, decision: ApplyDecision
) -> bool:
    """True when the decision carries the front door's signature for this very run."""
    if not public_key or not decision.attestation:
        return False
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        signature = base64.b64decode(decision.attestation, validate=True)
        key.verify(signature, signed_text(workflow_id, run_id, decision))
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True


def _warm_up() -> None:
    """Raise InvalidSignature once, at import, outside any workflow sandbox.

    cryptography's Rust core imports its exception type lazily, the first time it raises one;
    inside Temporal's sandbox that import fails and aborts the process. Once imported here, the
    type is cached and a failed verification in workflow code is an ordinary exception.
    """
    key = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    try:
        key.verify(bytes(64), b"warm-up")
    except InvalidSignature:
        pass


_warm_up()
