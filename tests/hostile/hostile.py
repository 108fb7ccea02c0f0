#!/usr/bin/env python3
"""Hostile input against a running lienthong server, from outside the Rust code.

Written from proto/lienthong/v1/exchange.proto and the README alone: the
stubs are generated from the .proto at start, documents are signed as the
proto's comments say, and each case asserts the precise gRPC status code
and, where a field is at fault, that the status detail begins with its path
(``document.attachments[0].name: ...``).

Usage (``bash tests/run`` installs the venv; the Rust test ``hostile::``
starts a server and runs this):

    target/test-python/bin/python tests/hostile/hostile.py \\
        --server 127.0.0.1:PORT --pki DATA/pki [-k PATTERN]

The server and PKI folder may also be given as LIENTHONG_HOSTILE_SERVER
and LIENTHONG_HOSTILE_PKI. The PKI folder is a development PKI as
``lienthong serve`` makes it: ca.crt, clients.toml and, per organisation, a
client certificate, its key and a document signing key.

Needs grpcio, grpcio-tools and cryptography (for Ed25519 signatures and a
foreign CA); the standard library does the rest.
"""

import argparse
import atexit
import base64
import datetime
import hashlib
import os
import secrets
import shutil
import sys
import tempfile
import tomllib
import unittest

# gRPC's own log would print each refused handshake; the assertions say
# what matters.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402
import grpc_tools  # noqa: E402
from grpc_tools import protoc  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")

# Who plays which part: a sender, its recipient, and an organisation that
# is party to nothing the suite sends.
SENDER = "phong-noi-vu"
RECIPIENT = "xa-van-nham"
OUTSIDER = "phong-tu-phap"

# The proto's signing contexts.
DOCUMENT_CONTEXT = b"lienthong document signature v1"
STATUS_CONTEXT = b"lienthong status v1"

HUGE = 100_000
# An error may quote a short prefix of a value, never the value.
MAX_DETAIL = 1024
TIMEOUT = 20

pb = None  # the generated messages, set by main()
rpc = None  # the generated stubs
CONFIG = None


def generate_stubs(proto_dir):
    """Compiles exchange.proto into a temporary folder and imports it."""
    global pb, rpc
    out = tempfile.mkdtemp(prefix="lienthong-stubs-")
    atexit.register(shutil.rmtree, out, True)
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    source = os.path.join(proto_dir, "lienthong", "v1", "exchange.proto")
    status = protoc.main(
        [
            "protoc",
            f"-I{proto_dir}",
            f"-I{include}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            source,
        ]
    )
    if status != 0:
        sys.exit(f"protoc failed on {source} (status {status})")
    sys.path.insert(0, out)
    from lienthong.v1 import exchange_pb2, exchange_pb2_grpc

    pb, rpc = exchange_pb2, exchange_pb2_grpc


# ------------------------------------------------------------------ keys


def key_id_of(public_key):
    """Hex of the first 16 bytes of SHA-256 over the DER SubjectPublicKeyInfo."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()[:16].hex()


ED25519_OID = bytes.fromhex("06032b6570")
ED25519_SEED = bytes.fromhex("04220420")


def load_private_key(pem):
    """A PKCS#8 private key. Ed25519 keys may be PKCS#8 v2 (RFC 5958, with
    the public key after the seed), which not every parser reads: their
    32-byte seed is then taken from the DER directly."""
    try:
        return serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        der = base64.b64decode(body)
        at = der.find(ED25519_SEED)
        if ED25519_OID not in der or at < 0:
            raise
        start = at + len(ED25519_SEED)
        return ed25519.Ed25519PrivateKey.from_private_bytes(der[start : start + 32])


class Signer:
    """An organisation's document signing key (PKCS#8 PEM)."""

    def __init__(self, pem):
        self.key = load_private_key(pem)
        self.key_id = key_id_of(self.key.public_key())

    def sign(self, context, data, key_id=None):
        """The signature over  context 0x00 key_id 0x00 data."""
        key_id = self.key_id if key_id is None else key_id
        message = context + b"\x00" + key_id.encode() + b"\x00" + data
        if isinstance(self.key, ed25519.Ed25519PrivateKey):
            return self.key.sign(message)
        if isinstance(self.key, ec.EllipticCurvePrivateKey):
            return self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())
        raise TypeError(f"unsupported signing key {type(self.key).__name__}")

    def signature(self, context, data, key_id=None):
        key_id = self.key_id if key_id is None else key_id
        return pb.DocumentSignature(key_id=key_id, signature=self.sign(context, data, key_id))


class Pki:
    """A development PKI folder, as clients.toml describes it."""

    def __init__(self, folder):
        self.folder = folder
        with open(os.path.join(folder, "clients.toml"), "rb") as f:
            self.clients = tomllib.load(f)["client"]
        self.ca = self.read("ca.crt")

    def read(self, relative):
        with open(os.path.join(self.folder, relative), "rb") as f:
            return f.read()

    def entry(self, name):
        for c in self.clients:
            if name in (c["code"], c["alias"]):
                return c
        raise KeyError(f"{name} is not in {self.folder}/clients.toml")

    def credentials(self, name):
        e = self.entry(name)
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca,
            private_key=self.read(e["key"]),
            certificate_chain=self.read(e["cert"]),
        )

    def signer(self, name):
        return Signer(self.read(self.entry(name)["signing_key"]))


def foreign_identity(org_code):
    """A CA of nobody's, and a certificate from it naming `org_code` as the
    development PKI would: CN and SAN URI urn:lienthong:org:CODE."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lienthong dev CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, org_code)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"urn:lienthong:org:{org_code}")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


# ------------------------------------------------------------------ clients

_stubs = {}


def open_channel(credentials):
    return grpc.secure_channel(
        CONFIG.server,
        credentials,
        options=[
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.max_receive_message_length", 64 << 20),
        ],
    )


def stub(name):
    """The Exchange stub of organisation `name`, over its own certificate."""
    if name not in _stubs:
        _stubs[name] = rpc.ExchangeStub(open_channel(CONFIG.pki.credentials(name)))
    return _stubs[name]


def signer(name):
    return CONFIG.pki.signer(name)


def today_in_vietnam():
    return (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=7)).date()


_abbreviations = {}


def abbreviation(name):
    """The issuer part of `name`'s notations, from GetDirectory."""
    if not _abbreviations:
        directory = stub(SENDER).GetDirectory(pb.GetDirectoryRequest(), timeout=TIMEOUT)
        for o in directory.organizations:
            _abbreviations[o.alias] = o.abbreviation
            _abbreviations[o.code] = o.abbreviation
    return _abbreviations[name]


def directive(sender=SENDER, to=(RECIPIENT,), number=0):
    """A valid directive (chi thi); number 0 asks the service for one."""
    return pb.Document(
        **{"from": sender},
        to=list(to),
        number=number,
        notation=f"CT-{abbreviation(sender)}",
        place="Hữu Lũng",
        promulgation_date=today_in_vietnam().isoformat(),
        document_type="chi-thi",
        subject=f"Về việc kiểm tra đầu vào {secrets.token_hex(4)}",
        signer=pb.Signer(competence="TM.", position="Chủ tịch", full_name="Nguyễn Văn A"),
    )


def attach(document, name, content=b"%PDF-1.7 hostile", media_type="application/pdf"):
    """Declares an attachment in `document`; returns its content."""
    document.attachments.append(
        pb.AttachmentRef(
            name=name,
            media_type=media_type,
            size=len(content),
            sha256=hashlib.sha256(content).digest(),
        )
    )
    return content


def send_request(document_bytes, contents=(), by=SENDER, idempotency_key="", key_id=None):
    """A SendRequest whose bytes are signed by `by`'s key."""
    return pb.SendRequest(
        document=document_bytes,
        attachments=[pb.AttachmentContent(content=c) for c in contents],
        idempotency_key=idempotency_key,
        signature=signer(by).signature(DOCUMENT_CONTEXT, document_bytes, key_id),
    )


def signed(document, contents=(), by=SENDER, idempotency_key=""):
    return send_request(document.SerializeToString(), contents, by, idempotency_key)


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field, payload):
    """One length-delimited protobuf field, encoded by hand."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def random_id():
    return secrets.token_hex(16)


# ------------------------------------------------------------------ cases


class Case(unittest.TestCase):
    """Assertions on statuses."""

    def refused(self, call, request, code, prefix=None, short=False):
        """`call(request)` fails with `code`, its detail starting with
        `prefix` (the field's path) and, if `short`, quoting no long value."""
        with self.assertRaises(grpc.RpcError) as caught:
            call(request, timeout=TIMEOUT)
        e = caught.exception
        detail = e.details() or ""
        self.assertEqual(
            e.code(), code, f"expected {code.name}, got {e.code().name}: {detail[:200]!r}"
        )
        if prefix is not None:
            self.assertTrue(
                detail.startswith(prefix),
                f"the detail should name the field ({prefix!r}): {detail[:200]!r}",
            )
        if short:
            self.assertLessEqual(
                len(detail), MAX_DETAIL, f"the detail echoes the input: {len(detail)} characters"
            )
        return detail

    def read_refused(self, method, request, prefix, short=False):
        """The recipient's read `method` is INVALID_ARGUMENT naming `prefix`."""
        call = getattr(stub(RECIPIENT), method)
        return self.refused(call, request, grpc.StatusCode.INVALID_ARGUMENT, prefix, short)

    def send_refused(self, request, code, prefix, by=SENDER, short=False):
        return self.refused(stub(by).Send, request, code, prefix, short)

    def invalid(self, request, prefix, short=False):
        return self.send_refused(request, grpc.StatusCode.INVALID_ARGUMENT, prefix, short=short)


class Baseline(Case):
    """What the rest relies on: a document signed here is accepted and read."""

    def test_a_signed_document_is_accepted_and_delivered(self):
        d = directive()
        content = attach(d, "report.pdf")
        sent = stub(SENDER).Send(signed(d, [content]), timeout=TIMEOUT)
        self.assertEqual(len(sent.id), 32)
        got = stub(RECIPIENT).GetDocument(
            pb.GetDocumentRequest(id=sent.id, include_content=True), timeout=TIMEOUT
        )
        self.assertEqual(got.document_bytes, d.SerializeToString())
        self.assertEqual(got.attachments[0].content, content)


class Impersonation(Case):
    """The sender is the certificate's organisation, whatever the document or
    its signature says."""

    def test_a_document_from_another_organisation_signed_with_its_key(self):
        d = directive(sender=OUTSIDER)
        self.send_refused(
            signed(d, by=OUTSIDER), grpc.StatusCode.PERMISSION_DENIED, "document.from:"
        )

    def test_own_document_signed_with_another_organisation_s_key(self):
        self.invalid(signed(directive(), by=OUTSIDER), "signature.key_id:")

    def test_own_key_id_over_another_key_s_signature(self):
        data = directive().SerializeToString()
        request = send_request(data)
        request.signature.signature = signer(OUTSIDER).sign(
            DOCUMENT_CONTEXT, data, signer(SENDER).key_id
        )
        self.invalid(request, "signature:")

    def test_a_received_document_resent_as_the_recipient(self):
        sent = stub(SENDER).Send(signed(directive()), timeout=TIMEOUT)
        got = stub(RECIPIENT).GetDocument(pb.GetDocumentRequest(id=sent.id), timeout=TIMEOUT)
        replay = pb.SendRequest(document=got.document_bytes, signature=got.signature)
        self.send_refused(
            replay, grpc.StatusCode.PERMISSION_DENIED, "document.from:", by=RECIPIENT
        )

    def test_no_signature(self):
        request = signed(directive())
        request.ClearField("signature")
        self.invalid(request, "signature:")


class CrossOrganisationReads(Case):
    """Another organisation's document looks exactly like an unknown one."""

    @classmethod
    def setUpClass(cls):
        sent = stub(SENDER).Send(signed(directive()), timeout=TIMEOUT)
        cls.id = sent.id

    def same_as_unknown(self, call, request_for):
        theirs = self.refused(call, request_for(self.id), grpc.StatusCode.NOT_FOUND)
        unknown_id = random_id()
        unknown = self.refused(call, request_for(unknown_id), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(
            theirs.replace(self.id, "<id>"), unknown.replace(unknown_id, "<id>")
        )

    def test_get_document(self):
        self.same_as_unknown(
            stub(OUTSIDER).GetDocument,
            lambda i: pb.GetDocumentRequest(id=i, include_content=True),
        )

    def test_get_inclusion_proof(self):
        self.same_as_unknown(
            stub(OUTSIDER).GetInclusionProof,
            lambda i: pb.GetInclusionProofRequest(document_id=i),
        )

    def test_get_history(self):
        self.same_as_unknown(
            stub(OUTSIDER).GetHistory, lambda i: pb.GetHistoryRequest(document_id=i)
        )

    def test_change_status(self):
        def request_for(document_id):
            status = pb.StatusMessage(
                document_id=document_id,
                code=pb.STATUS_CODE_REGISTERED,
                timestamp_ms=0,
                **{"from": CONFIG.pki.entry(OUTSIDER)["code"]},
            ).SerializeToString()
            return pb.ChangeStatusRequest(
                status=status, signature=signer(OUTSIDER).signature(STATUS_CONTEXT, status)
            )

        self.same_as_unknown(stub(OUTSIDER).ChangeStatus, request_for)

    def test_not_in_the_outsider_s_inbox(self):
        inbox = stub(OUTSIDER).ListInbox(pb.ListMailboxRequest(page_size=500), timeout=TIMEOUT)
        self.assertNotIn(self.id, [e.document.id for e in inbox.entries])


class Certificates(Case):
    """Only a client certificate from the service's CA is served."""

    def call_over(self, credentials):
        """A call over `credentials` is not served (the handshake fails:
        UNAVAILABLE), and the server goes on serving others."""
        channel = open_channel(credentials)
        try:
            self.refused(
                rpc.ExchangeStub(channel).ListInbox,
                pb.ListMailboxRequest(),
                grpc.StatusCode.UNAVAILABLE,
            )
        finally:
            channel.close()
        stub(SENDER).GetDirectory(pb.GetDirectoryRequest(), timeout=TIMEOUT)

    def test_no_client_certificate(self):
        self.call_over(grpc.ssl_channel_credentials(root_certificates=CONFIG.pki.ca))

    def test_a_certificate_from_a_foreign_ca(self):
        key, cert = foreign_identity(CONFIG.pki.entry(SENDER)["code"])
        self.call_over(
            grpc.ssl_channel_credentials(
                root_certificates=CONFIG.pki.ca, private_key=key, certificate_chain=cert
            )
        )


class EmptyAndMalformed(Case):
    """Empty and malformed requests get INVALID_ARGUMENT naming the field."""

    def test_an_empty_send(self):
        self.invalid(pb.SendRequest(), "document")

    def test_document_bytes_that_are_not_protobuf(self):
        self.invalid(send_request(b"\xff\xff\xff\xff"), "document")

    def test_an_empty_id_in_get_document(self):
        self.read_refused("GetDocument", pb.GetDocumentRequest(id=""), "id:")

    def test_an_empty_id_in_get_inclusion_proof(self):
        self.read_refused(
            "GetInclusionProof",
            pb.GetInclusionProofRequest(document_id=""),
            "document_id:",
        )

    def test_an_empty_id_in_get_history(self):
        self.read_refused("GetHistory", pb.GetHistoryRequest(document_id=""), "document_id:")

    def test_an_idempotency_key_with_a_space(self):
        self.invalid(signed(directive(), idempotency_key="a b"), "idempotency_key:")


def huge(prefix=""):
    return prefix + "x" * (HUGE - len(prefix))


class HugeFields(Case):
    """A 100,000-character value is INVALID_ARGUMENT naming its field, with a
    detail that does not echo it (not RESOURCE_EXHAUSTED from the status
    metadata overflowing)."""

    def header_case(self, change, prefix):
        d = directive()
        contents = [attach(d, "a.pdf")]
        change(d)
        self.invalid(signed(d, contents), prefix, short=True)

    def test_media_type(self):
        def change(d):
            d.attachments[0].media_type = huge("application/")

        self.header_case(change, "document.attachments[0].media_type:")

    def test_attachment_name(self):
        def change(d):
            d.attachments[0].name = huge()

        self.header_case(change, "document.attachments[0].name:")

    def test_document_type(self):
        self.header_case(lambda d: setattr(d, "document_type", huge()), "document.document_type:")

    def test_promulgation_date(self):
        self.header_case(
            lambda d: setattr(d, "promulgation_date", huge("2026-")), "document.promulgation_date:"
        )

    def test_due_date(self):
        self.header_case(lambda d: setattr(d, "due_date", huge("2026-")), "document.due_date:")

    def test_reply_to(self):
        self.header_case(lambda d: setattr(d, "reply_to", huge()), "document.reply_to:")

    def test_competence(self):
        self.header_case(
            lambda d: setattr(d.signer, "competence", huge()), "document.signer.competence:"
        )

    def test_notation(self):
        self.header_case(lambda d: setattr(d, "notation", huge("CT-")), "document.notation:")

    def test_from(self):
        self.header_case(lambda d: setattr(d, "from", huge()), "document.from:")

    def test_recipient(self):
        def change(d):
            d.to[0] = huge()

        self.header_case(change, "document.to[0]:")

    def test_key_id(self):
        request = send_request(directive().SerializeToString(), key_id=huge())
        self.invalid(request, "signature.key_id:", short=True)

    def test_idempotency_key(self):
        self.invalid(signed(directive(), idempotency_key=huge()), "idempotency_key:", short=True)

    def test_id_in_get_document(self):
        self.read_refused("GetDocument", pb.GetDocumentRequest(id=huge()), "id:", short=True)

    def test_id_in_get_inclusion_proof(self):
        self.read_refused(
            "GetInclusionProof",
            pb.GetInclusionProofRequest(document_id=huge()),
            "document_id:",
            short=True,
        )

    def test_id_in_get_history(self):
        self.read_refused(
            "GetHistory",
            pb.GetHistoryRequest(document_id=huge()),
            "document_id:",
            short=True,
        )

    def test_page_token(self):
        self.read_refused(
            "ListInbox",
            pb.ListMailboxRequest(page_token=huge()),
            "page_token:",
            short=True,
        )


class HiddenText(Case):
    """Text that can hide or spoof is refused in a signed official document:
    bidirectional controls and invisible format characters in names,
    subjects and numbers; line and paragraph separators in one-line fields."""

    def header_case(self, change, prefix):
        d = directive()
        contents = [attach(d, "a.pdf")]
        change(d)
        self.invalid(signed(d, contents), prefix)

    def test_right_to_left_override_in_an_attachment_name(self):
        def change(d):
            d.attachments[0].name = "a\u202etxt.exe"

        self.header_case(change, "document.attachments[0].name:")

    def test_bidirectional_isolate_in_the_subject(self):
        self.header_case(
            lambda d: setattr(d, "subject", "Về việc \u2067khẩn\u2069 cấp"), "document.subject:"
        )

    def test_zero_width_space_in_the_subject(self):
        self.header_case(
            lambda d: setattr(d, "subject", "Về việc\u200b kiểm tra"), "document.subject:"
        )

    def test_right_to_left_embedding_in_the_signer_s_name(self):
        self.header_case(
            lambda d: setattr(d.signer, "full_name", "Nguyễn \u202bVăn A"),
            "document.signer.full_name:",
        )

    def test_line_separator_in_the_subject(self):
        self.header_case(
            lambda d: setattr(d, "subject", "Về việc kiểm tra\u2028Đã duyệt"), "document.subject:"
        )

    def test_paragraph_separator_in_the_place(self):
        self.header_case(lambda d: setattr(d, "place", "Hữu\u2029Lũng"), "document.place:")

    def test_line_separator_in_an_attachment_name(self):
        def change(d):
            d.attachments[0].name = "a\u2028b.pdf"

        self.header_case(change, "document.attachments[0].name:")

    def test_line_separator_in_a_place_of_receipt(self):
        def change(d):
            d.to_places.append("Như trên\u2028Lưu: VT")

        self.header_case(change, "document.to_places[0]:")


class AttachmentNames(Case):
    """Attachment names are unique ignoring case, and none is the folder a
    client saves the proof in."""

    def names_case(self, names, prefix):
        d = directive()
        contents = [attach(d, n, f"%PDF {i}".encode()) for i, n in enumerate(names)]
        self.invalid(signed(d, contents), prefix)

    def test_names_differing_only_in_case(self):
        self.names_case(["Report.pdf", "report.PDF"], "document.attachments[1].name:")

    def test_the_proof_folder_s_name(self):
        self.names_case(["lienthong-proof"], "document.attachments[0].name:")

    def test_the_proof_folder_s_name_in_capitals(self):
        self.names_case(["a.pdf", "LIENTHONG-PROOF"], "document.attachments[1].name:")


class Bounds(Case):
    """Lists are bounded, dates plausible, recipients written as the
    directory writes them."""

    def test_100000_empty_places_of_receipt(self):
        d = directive()
        d.to_places.extend([""] * HUGE)
        self.invalid(signed(d), "document.to_places", short=True)

    def test_100000_places_of_receipt(self):
        d = directive()
        d.to_places.extend(["Lưu: VT"] * HUGE)
        self.invalid(signed(d), "document.to_places", short=True)

    def test_a_due_date_in_9999(self):
        d = directive()
        d.due_date = "9999-12-31"
        self.invalid(signed(d), "document.due_date:")

    def test_a_recipient_with_a_leading_space(self):
        self.invalid(signed(directive(to=[" " + RECIPIENT])), "document.to[0]:")

    def test_a_recipient_with_a_trailing_space(self):
        self.invalid(signed(directive(to=[RECIPIENT + " "])), "document.to[0]:")


class UnknownFields(Case):
    """What recipients' software cannot see must not be signed into the
    record: a document with fields the proto does not define is refused."""

    def test_a_1_mb_unknown_field_in_the_document(self):
        data = directive().SerializeToString() + length_delimited(99, b"\x00" * (1 << 20))
        self.invalid(send_request(data), "document", short=True)

    def test_an_unknown_field_inside_the_signer(self):
        d = directive()
        hidden = d.signer.SerializeToString() + length_delimited(9, b"hidden")
        d.ClearField("signer")
        data = d.SerializeToString() + length_delimited(10, hidden)
        self.invalid(send_request(data), "document")


class Replays(Case):
    """A replayed send creates nothing new."""

    def test_the_same_idempotency_key_and_content_answer_the_same_document(self):
        key = f"hostile-{secrets.token_hex(8)}"
        request = signed(directive(), idempotency_key=key)
        first = stub(SENDER).Send(request, timeout=TIMEOUT)
        again = stub(SENDER).Send(request, timeout=TIMEOUT)
        self.assertFalse(first.duplicate)
        self.assertTrue(again.duplicate)
        self.assertEqual(first.id, again.id)
        self.assertEqual(first.number, again.number)

    def test_the_same_idempotency_key_with_other_content(self):
        key = f"hostile-{secrets.token_hex(8)}"
        stub(SENDER).Send(signed(directive(), idempotency_key=key), timeout=TIMEOUT)
        self.send_refused(
            signed(directive(), idempotency_key=key),
            grpc.StatusCode.ALREADY_EXISTS,
            "idempotency_key:",
        )

    def test_a_numbered_document_sent_twice_without_a_key(self):
        request = signed(directive(number=secrets.randbelow(10**10) + 10**9))
        stub(SENDER).Send(request, timeout=TIMEOUT)
        self.send_refused(request, grpc.StatusCode.ALREADY_EXISTS, "document.number:")


# ------------------------------------------------------------------ main


class Config:
    def __init__(self, server, pki):
        self.server = server
        self.pki = Pki(pki)


def main():
    global CONFIG
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server", default=os.environ.get("LIENTHONG_HOSTILE_SERVER"))
    parser.add_argument("--pki", default=os.environ.get("LIENTHONG_HOSTILE_PKI"))
    parser.add_argument("--proto", default=PROTO_DIR, help="the folder holding lienthong/v1/")
    args, rest = parser.parse_known_args()
    if not args.server or not args.pki:
        parser.error("give --server HOST:PORT and --pki DIR (or LIENTHONG_HOSTILE_SERVER/_PKI)")
    generate_stubs(os.path.abspath(args.proto))
    CONFIG = Config(args.server, args.pki)
    runner = unittest.TextTestRunner(resultclass=ClassRecordingResult, verbosity=2)
    program = unittest.main(argv=[sys.argv[0], *rest], testRunner=runner, exit=False)
    result = program.result
    failed = {}
    for test, _ in result.failures + result.errors:
        # A class whose setUpClass failed is reported by an _ErrorHolder
        # whose description names it: "setUpClass (__main__.Name)".
        name = type(test).__name__
        method = getattr(test, "_testMethodName", None)
        if method is None:
            name = str(test).rsplit(".", 1)[-1].rstrip(")")
            method = "setUpClass"
        failed.setdefault(name, []).append(method)
    print("\nclasses:", file=sys.stderr)
    for name in result.classes:
        mark, detail = "ok", ""
        if name in failed:
            mark, detail = "FAIL", f" ({', '.join(failed[name])})"
        print(f"  {mark:<5}{name}{detail}", file=sys.stderr)
    sys.exit(0 if result.wasSuccessful() else 1)


class ClassRecordingResult(unittest.TextTestResult):
    """Remembers which case classes ran, in order, for the summary."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.classes = []

    def startTest(self, test):
        name = type(test).__name__
        if name not in self.classes:
            self.classes.append(name)
        super().startTest(test)


if __name__ == "__main__":
    main()
