#!/usr/bin/env python3
"""A small S3 server for medallion's tests, with fault injection.

Python 3 standard library only.  Binds to 127.0.0.1 and nothing else.

It is a complete stub, not a proxy:
  - SigV4 is verified strictly, with AWS's canonicalisation: the path and the
    query are decoded once and re-encoded (RFC 3986, uppercase hex, '/' kept
    in the path only), parameters sorted, "name=" for empty values, signed
    header values trimmed and merged; every x-amz-* header must be signed;
    x-amz-content-sha256 is required and checked against the body; requests
    more than 15 minutes off are RequestTimeTooSkewed; a wrong region in the
    credential scope is AuthorizationHeaderMalformed.  Anonymous requests are
    refused (AccessDenied) unless configured otherwise.
  - ListObjectsV2 in UTF-8 byte order, with prefix, delimiter, max-keys,
    start-after, opaque continuation tokens (they start with "+/" and end in
    "=", so clients must encode them) and real encoding-type=url ('+' for a
    space, as S3 does) with <EncodingType>url</EncodingType>.
  - GetObject and HeadObject with If-Match / If-None-Match (412 / 304) and a
    single Range; PutObject (also aws-chunked), multipart uploads,
    DeleteObject(s), CreateBucket, ListBuckets: enough for the AWS CLI.

Usage:
  python3 fault_s3.py [--port 0] [--bucket landing ...] [--region us-east-1]
      [--access-key S3RVER --secret-key S3RVER] [--state-file PATH]
      [--verbose]

When ready it prints exactly one line on stdout:
  S3 listening on http://127.0.0.1:PORT
and it exits with status 0 on SIGTERM or SIGINT (saving its objects to
--state-file when given, from which it loads them again at start).

Admin API (no authentication; paths start with "/__", which no bucket name
can):
  PUT    /__object/BUCKET/KEY        store the request body as an object
                                     (KEY percent-encoded; ?mtime=EPOCH)
  GET    /__object/BUCKET/KEY        the object's bytes
  DELETE /__object/BUCKET/KEY
  GET    /__objects/BUCKET           JSON list of {key, etag, size}
  PUT    /__bucket/BUCKET            create a bucket
  POST   /__config                   JSON: {"allow_anonymous": bool,
                                     "url_encoding": bool (false: ignore
                                     encoding-type, as s3rver does),
                                     "region": "...", "credentials":
                                     [{"access_key", "secret_key",
                                     "session_token"}]}
  POST   /__fault                    JSON: one rule, or {"rules": [...],
                                     "replace": bool}
  DELETE /__fault                    remove every rule
  GET    /__fault                    JSON: rules (with their counts) and
                                     counters: requests by operation, faults
                                     injected by kind and in total
  GET    /__requests                 JSON: the last 10,000 S3 requests, in
                                     arrival order: {serial, t (epoch
                                     seconds), op, key, connection (serial
                                     of the TCP connection), on_connection
                                     (1 for its first request), fault}
  POST   /__reset                    reset the counters and the request log

A fault rule (JSON object):
  kind          one of KINDS below, or
  kinds         a list of kinds, one picked at random per injection (among
                those that apply to the request's operation)
  op            "list", "get", "head", "put", "data" (list, get and head:
                the default) or "any"
  key           exact object key; key_prefix / key_contains likewise;
                prefix: the listing's prefix parameter
  nth           fire only on the nth matching request (1-based)
  after         skip the first N matching requests
  count         fire at most this many times (default: 1 with key or nth,
                else unlimited)
  probability   fire with this probability (0..1), drawn from a random
                generator seeded with "seed" (default 0) for this rule
  and per kind: retry_after (seconds, slowdown), region (redirect),
  bytes (reset, short_body, stall: body bytes sent before the fault;
  default half; trickle: bytes per piece, default 4096), seconds (stall,
  no_response, delay), interval (trickle: seconds between pieces, default
  0.25), status/code/message (error), append/content (change_object).

KINDS:
  slowdown          503 SlowDown (with Retry-After when retry_after is set)
  internal_error    500 InternalError
  service_unavailable 503 ServiceUnavailable
  request_timeout   400 RequestTimeout
  skewed            403 RequestTimeTooSkewed
  expired_token     400 ExpiredToken
  redirect          301 PermanentRedirect, x-amz-bucket-region: REGION
  error             any status/code/message
  reset             the headers and part of the body, then a TCP reset
  short_body        the headers (full Content-Length), part of the body, then
                    a normal close
  stall             the headers and part of the body, then nothing for
                    `seconds` (default 60), then a reset
  no_response       read the request, then send nothing at all (not even a
                    status line) for `seconds` (default 60), then a reset:
                    an overloaded front end or a dead connection
  trickle           the whole answer, but slowly: the headers at once, then
                    the body `bytes` at a time every `interval` seconds (a
                    slow link; the transfer always progresses)
  close             close the connection without answering
  truncated_xml     (list) a 200 whose listing XML is cut in the middle
  invalid_xml       (list) a 200 whose body is not well-formed XML
  change_object     (get, head) the object is replaced just before it is
                    served (a new ETag), as if overwritten between the
                    listing and the GET: an If-Match GET gets 412.  The new
                    body is `content`, or the old one plus `append`
                    (default "\\n")
  delay             wait `seconds`, then answer normally
"""

import argparse
import base64
import binascii
import collections
import datetime
import email.utils
import hashlib
import hmac
import json
import os
import pickle
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW_SECONDS = 15 * 60
TOKEN_MARKER = b"\xfb\xff"  # base64 of a token then starts with "+/"

KINDS = {
    "slowdown", "internal_error", "service_unavailable", "request_timeout",
    "skewed", "expired_token", "redirect", "error", "reset", "short_body",
    "stall", "close", "truncated_xml", "invalid_xml", "change_object",
    "delay", "no_response", "trickle",
}
LIST_ONLY_KINDS = {"truncated_xml", "invalid_xml"}
OBJECT_ONLY_KINDS = {"change_object"}
BODY_KINDS = {"reset", "short_body", "stall", "trickle"}
RULE_FIELDS = {
    "kind", "kinds", "op", "key", "key_prefix", "key_contains", "prefix",
    "nth", "after", "count", "probability", "seed", "retry_after", "region",
    "bytes", "seconds", "interval", "status", "code", "message", "append",
    "content", "name",
}
REQUEST_LOG_LENGTH = 10000


class S3Error(Exception):
    """An S3 error answer."""

    def __init__(self, status, code, message, extra=None, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}
        self.headers = headers or {}


def xml_escape(text):
    return (text.replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def uri_encode(text, keep_slash):
    """AWS UriEncode of a str (its UTF-8 bytes)."""
    safe = "-_.~" + ("/" if keep_slash else "")
    return urllib.parse.quote(text, safe=safe, encoding="utf-8",
                              errors="strict")


def iso8601(epoch):
    dt = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def http_date(epoch):
    return email.utils.formatdate(epoch, usegmt=True)


def key_bytes(key):
    return key.encode("utf-8", "surrogateescape")


class StoredObject:
    __slots__ = ("data", "etag", "mtime")

    def __init__(self, data, mtime=None, etag=None):
        self.data = bytes(data)
        self.etag = etag or '"%s"' % hashlib.md5(self.data).hexdigest()
        self.mtime = mtime if mtime is not None else time.time()


class Rule:
    def __init__(self, spec, index):
        unknown = set(spec) - RULE_FIELDS
        if unknown:
            raise ValueError("unknown rule fields: %s" % ", ".join(sorted(unknown)))
        kinds = spec.get("kinds") or ([spec["kind"]] if "kind" in spec else [])
        if not kinds:
            raise ValueError("a rule needs kind or kinds")
        for kind in kinds:
            if kind not in KINDS:
                raise ValueError("unknown fault kind %r" % kind)
        self.spec = dict(spec)
        self.index = index
        self.kinds = list(kinds)
        self.op = spec.get("op", "data")
        if self.op not in ("list", "get", "head", "put", "data", "any"):
            raise ValueError("unknown op %r" % self.op)
        self.probability = spec.get("probability")
        self.random = random.Random(int(spec.get("seed", 0)))
        targeted = any(f in spec for f in ("key", "nth"))
        count = spec.get("count", 1 if targeted else None)
        self.count = None if count is None else int(count)
        self.after = int(spec.get("after", 0))
        self.nth = None if spec.get("nth") is None else int(spec["nth"])
        self.matched = 0
        self.fired = 0

    def matches(self, op, key, prefix):
        if self.op == "data":
            if op not in ("list", "get", "head"):
                return False
        elif self.op != "any" and self.op != op:
            return False
        spec = self.spec
        if "key" in spec and key != spec["key"]:
            return False
        if "key_prefix" in spec and (key is None or not key.startswith(spec["key_prefix"])):
            return False
        if "key_contains" in spec and (key is None or spec["key_contains"] not in key):
            return False
        if "prefix" in spec and (op != "list" or prefix != spec["prefix"]):
            return False
        return True

    def applicable_kinds(self, op):
        kinds = []
        for kind in self.kinds:
            if kind in LIST_ONLY_KINDS and op != "list":
                continue
            if kind in OBJECT_ONLY_KINDS and op not in ("get", "head"):
                continue
            if kind in BODY_KINDS and op == "head":
                continue
            kinds.append(kind)
        return kinds

    def decide(self, op):
        """Called for a matching request; returns a kind or None."""
        self.matched += 1
        if self.count is not None and self.fired >= self.count:
            return None
        if self.matched <= self.after:
            return None
        if self.nth is not None and self.matched != self.nth:
            return None
        kinds = self.applicable_kinds(op)
        if self.probability is not None:
            # always draw, so that the sequence depends only on the requests
            draw = self.random.random()
            pick = self.random.randrange(len(self.kinds))
            if draw >= float(self.probability):
                return None
            if not kinds:
                return None
            kind = self.kinds[pick] if self.kinds[pick] in kinds else kinds[pick % len(kinds)]
        else:
            if not kinds:
                return None
            kind = kinds[0] if len(kinds) == 1 else self.random.choice(kinds)
        self.fired += 1
        return kind

    def describe(self):
        described = dict(self.spec)
        described["matched"] = self.matched
        described["fired"] = self.fired
        return described


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.buckets = {name: {} for name in args.bucket}
        self.uploads = {}
        self.region = args.region
        self.allow_anonymous = args.allow_anonymous
        self.url_encoding = True
        self.credentials = {args.access_key: {"secret_key": args.secret_key,
                                              "session_token": args.session_token}}
        self.rules = []
        self.rule_serial = 0
        self.request_serial = 0
        self.connection_serial = 0
        self.upload_serial = 0
        self.shutdown = threading.Event()
        self.reset_counters()

    def reset_counters(self):
        self.requests = {}
        self.injected = {}
        self.injected_total = 0
        self.request_log = collections.deque(maxlen=REQUEST_LOG_LENGTH)
        self.logged = 0

    def next_connection_id(self):
        with self.lock:
            self.connection_serial += 1
            return self.connection_serial

    def next_request_id(self):
        with self.lock:
            self.request_serial += 1
            return "FAULTS3%013X" % self.request_serial

    def count_request(self, op):
        with self.lock:
            self.requests[op] = self.requests.get(op, 0) + 1

    def log_request(self, entry):
        with self.lock:
            self.logged += 1
            entry["serial"] = self.logged
            self.request_log.append(entry)

    def pick_fault(self, op, key, prefix):
        with self.lock:
            for rule in self.rules:
                if not rule.matches(op, key, prefix):
                    continue
                kind = rule.decide(op)
                if kind is not None:
                    self.injected[kind] = self.injected.get(kind, 0) + 1
                    self.injected_total += 1
                    return rule, kind
        return None, None

    def save(self, path):
        with self.lock:
            snapshot = {
                name: {k: (o.data, o.mtime, o.etag) for k, o in objects.items()}
                for name, objects in self.buckets.items()
            }
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump(snapshot, f)
        os.replace(tmp, path)

    def load(self, path):
        with open(path, "rb") as f:
            snapshot = pickle.load(f)
        for name, objects in snapshot.items():
            bucket = self.buckets.setdefault(name, {})
            for k, (data, mtime, etag) in objects.items():
                bucket[k] = StoredObject(data, mtime, etag)


STATE = None
LOG = None


def log(message):
    if LOG is not None:
        LOG.write("%s %s\n" % (time.strftime("%H:%M:%S"), message))
        LOG.flush()


# --------------------------------------------------------------- SigV4

def hmac_sha256(key, text):
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret, date, region, service):
    k = hmac_sha256(("AWS4" + secret).encode("utf-8"), date)
    k = hmac_sha256(k, region)
    k = hmac_sha256(k, service)
    return hmac_sha256(k, "aws4_request")


def parse_query(raw_query):
    """Decoded (name, value) pairs, in order; '+' means a space (form rules)."""
    pairs = []
    if raw_query == "":
        return pairs
    for piece in raw_query.split("&"):
        if piece == "":
            continue
        name, _, value = piece.partition("=")
        try:
            pairs.append((urllib.parse.unquote_plus(name, errors="strict"),
                          urllib.parse.unquote_plus(value, errors="strict")))
        except UnicodeDecodeError:
            raise S3Error(400, "InvalidArgument", "The query string is not valid UTF-8.")
    return pairs


def canonical_query(pairs):
    encoded = sorted((uri_encode(n, False), uri_encode(v, False)) for n, v in pairs)
    return "&".join("%s=%s" % (n, v) for n, v in encoded)


AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$")


def verify_sigv4(handler, decoded_path, pairs, body):
    """Raises S3Error unless the request is correctly signed (or anonymous
    requests are allowed and it is one)."""
    headers = handler.headers
    authorization = headers.get("Authorization")
    if authorization is None:
        if STATE.allow_anonymous:
            return None
        raise S3Error(403, "AccessDenied", "Anonymous access is forbidden for this operation.")
    match = AUTH_RE.match(authorization)
    if not match:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; only AWS4-HMAC-SHA256 is accepted.",
                      {"Region": STATE.region})
    credential, signed_headers_text, signature = match.groups()
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or parts[3] != "s3":
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the Credential is mal-formed.",
                      {"Region": STATE.region})
    access_key, scope_date, scope_region = parts[0], parts[1], parts[2]
    account = STATE.credentials.get(access_key)
    if account is None:
        raise S3Error(403, "InvalidAccessKeyId",
                      "The AWS Access Key Id you provided does not exist in our records.",
                      {"AWSAccessKeyId": access_key})
    if scope_region != STATE.region:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; the region '%s' is wrong; expecting '%s'"
                      % (scope_region, STATE.region), {"Region": STATE.region})

    amz_date = headers.get("x-amz-date")
    if amz_date is None:
        raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
    except ValueError:
        raise S3Error(403, "AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")
    if abs(time.time() - when.timestamp()) > MAX_SKEW_SECONDS:
        raise S3Error(403, "RequestTimeTooSkewed",
                      "The difference between the request time and the current time is too large.",
                      {"RequestTime": amz_date, "ServerTime": iso8601(time.time()),
                       "MaxAllowedSkewMilliseconds": "900000"})
    if scope_date != amz_date[:8]:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; Invalid credential date.",
                      {"Region": STATE.region})

    signed = signed_headers_text.split(";")
    if signed != sorted(signed) or any(h != h.lower() for h in signed) or "host" not in signed:
        raise S3Error(400, "AuthorizationHeaderMalformed",
                      "The authorization header is malformed; SignedHeaders must be sorted, lower case, and include host.",
                      {"Region": STATE.region})
    present = {name.lower() for name in headers.keys()}
    unsigned = sorted(n for n in present if n.startswith("x-amz-") and n not in signed)
    if unsigned:
        raise S3Error(403, "AccessDenied",
                      "There were headers present in the request which were not signed",
                      {"HeadersNotSigned": ", ".join(unsigned)})

    payload_hash = headers.get("x-amz-content-sha256")
    if payload_hash is None:
        raise S3Error(400, "InvalidRequest",
                      "Missing required header for this request: x-amz-content-sha256")
    if re.fullmatch(r"[0-9a-f]{64}", payload_hash):
        if hashlib.sha256(body).hexdigest() != payload_hash:
            raise S3Error(400, "XAmzContentSHA256Mismatch",
                          "The provided 'x-amz-content-sha256' header does not match what was computed.")
    elif payload_hash not in ("UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                              "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                              "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"):
        raise S3Error(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                      "STREAMING-*, or a valid sha256 value.")

    canonical_headers = ""
    for name in signed:
        values = headers.get_all(name) or []
        merged = ",".join(" ".join(v.split()) for v in values)
        canonical_headers += "%s:%s\n" % (name, merged)
    canonical_request = "\n".join([
        handler.command,
        uri_encode(decoded_path, True),
        canonical_query(pairs),
        canonical_headers,
        signed_headers_text,
        payload_hash,
    ])
    scope = "%s/%s/s3/aws4_request" % (scope_date, scope_region)
    string_to_sign = "\n".join([
        "AWS4-HMAC-SHA256", amz_date, scope,
        hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()])
    expected = hmac.new(signing_key(account["secret_key"], scope_date, scope_region, "s3"),
                        string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise S3Error(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you provided. "
                      "Check your key and signing method.",
                      {"AWSAccessKeyId": access_key, "StringToSign": string_to_sign,
                       "CanonicalRequest": canonical_request})

    token = headers.get("x-amz-security-token")
    wanted = account.get("session_token")
    if wanted and token != wanted:
        raise S3Error(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    if token and not wanted:
        raise S3Error(403, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    return access_key


def decode_aws_chunked(body):
    """The payload of an aws-chunked body (chunk signatures are not checked)."""
    out = bytearray()
    position = 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise S3Error(400, "IncompleteBody", "The aws-chunked body is truncated.")
        header = body[position:line_end].split(b";")[0]
        try:
            size = int(header, 16)
        except ValueError:
            raise S3Error(400, "InvalidRequest", "Bad aws-chunked chunk header.")
        position = line_end + 2
        if size == 0:
            break
        out += body[position:position + size]
        position += size + 2
    return bytes(out)


# ------------------------------------------------------------ handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FaultS3"
    sys_version = ""
    # headers and body go out in separate writes: without TCP_NODELAY each
    # answer on a kept-alive connection waits for a delayed ACK (40 ms)
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # noqa: N802 (http.server API)
        pass

    def setup(self):
        super().setup()
        self.connection_id = STATE.next_connection_id()
        self.connection_requests = 0

    def handle_one_request(self):
        # a fault may have closed (or reset) the connection on purpose
        try:
            super().handle_one_request()
        except (ValueError, OSError):
            self.close_connection = True

    # ---- plumbing

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send_answer(self, status, body=b"", headers=None, content_type="application/xml",
                    fault=None, fault_rule=None, head=False):
        """Send a response; a body fault (reset, short_body, stall) cuts it."""
        headers = dict(headers or {})
        headers.setdefault("x-amz-request-id", self.request_id)
        headers.setdefault("x-amz-id-2", base64.b64encode(self.request_id.encode()).decode())
        if body or not head:
            headers.setdefault("Content-Type", content_type)
        headers.setdefault("Content-Length", str(len(body)))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            self.wfile.flush()
            return
        if fault == "trickle":
            spec = fault_rule.spec if fault_rule else {}
            piece = max(1, int(spec.get("bytes", 4096)))
            interval = float(spec.get("interval", 0.25))
            for start in range(0, len(body), piece):
                if start > 0 and STATE.shutdown.wait(interval):
                    break
                self.wfile.write(body[start:start + piece])
                self.wfile.flush()
            return
        if fault in BODY_KINDS:
            spec = fault_rule.spec if fault_rule else {}
            cut = int(spec.get("bytes", len(body) // 2))
            cut = max(0, min(cut, max(len(body) - 1, 0)))
            self.wfile.write(body[:cut])
            self.wfile.flush()
            if fault == "stall":
                STATE.shutdown.wait(float(spec.get("seconds", 60)))
                self.abort_connection()
            elif fault == "reset":
                self.abort_connection()
            else:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
            return
        self.wfile.write(body)
        self.wfile.flush()

    def abort_connection(self):
        """Close with a TCP reset (SO_LINGER 0) rather than a FIN."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        for stream in (self.wfile, self.rfile):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.connection.close()
        except OSError:
            pass

    def send_error_xml(self, error, head=False, fault=None, fault_rule=None):
        resource = urllib.parse.unquote(self.path.split("?", 1)[0])
        body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message>" % (
            xml_escape(error.code), xml_escape(error.message))
        for name, value in error.extra.items():
            body += "<%s>%s</%s>" % (name, xml_escape(str(value)), name)
        body += "<Resource>%s</Resource><RequestId>%s</RequestId><HostId>%s</HostId></Error>" % (
            xml_escape(resource), self.request_id,
            base64.b64encode(self.request_id.encode()).decode())
        self.send_answer(error.status, b"" if head else body.encode("utf-8"),
                         error.headers, head=head, fault=fault, fault_rule=fault_rule)

    def send_json(self, status, value):
        body = (json.dumps(value, indent=1, sort_keys=True) + "\n").encode()
        self.send_answer(status, body, content_type="application/json")

    # ---- dispatch

    def do_GET(self):  # noqa: N802
        self.dispatch()

    def do_HEAD(self):  # noqa: N802
        self.dispatch()

    def do_PUT(self):  # noqa: N802
        self.dispatch()

    def do_POST(self):  # noqa: N802
        self.dispatch()

    def do_DELETE(self):  # noqa: N802
        self.dispatch()

    def dispatch(self):
        self.request_id = STATE.next_request_id()
        started = time.time()
        raw_path, _, raw_query = self.path.partition("?")
        head = self.command == "HEAD"
        status_note = ""
        try:
            body = self.read_body()
            if raw_path.startswith("/__"):
                self.admin(raw_path, raw_query, body)
                return
            try:
                decoded_path = urllib.parse.unquote(raw_path, errors="strict")
            except UnicodeDecodeError:
                raise S3Error(400, "InvalidURI", "Couldn't parse the specified URI.")
            pairs = parse_query(raw_query)
            params = {}
            for name, value in pairs:
                params.setdefault(name, value)
            bucket, _, key = decoded_path.lstrip("/").partition("/")
            op = self.operation(bucket, key, params)
            STATE.count_request(op)
            self.connection_requests += 1

            rule, fault = STATE.pick_fault(op, key if key else None, params.get("prefix"))
            STATE.log_request({"t": started, "op": op, "key": key if key else None,
                               "connection": self.connection_id,
                               "on_connection": self.connection_requests, "fault": fault})
            if fault is not None:
                status_note = " fault=%s" % fault
                if self.pre_fault(fault, rule, op, bucket, key, head):
                    return

            verify_sigv4(self, decoded_path, pairs, body)
            self.serve(op, bucket, key, params, body, head, fault, rule)
        except S3Error as error:
            status_note += " -> %d %s" % (error.status, error.code)
            self.send_error_xml(error, head=head)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            log("%s %s%s" % (self.command, self.path, status_note))

    def operation(self, bucket, key, params):
        method = self.command
        if bucket == "":
            return "service"
        if key == "":
            if method == "GET" and params.get("list-type") == "2":
                return "list"
            return "bucket"
        if method == "GET":
            return "get"
        if method == "HEAD":
            return "head"
        if method in ("PUT", "POST"):
            return "put"
        return "delete"

    def pre_fault(self, fault, rule, op, bucket, key, head):
        """Faults that replace the answer; returns True when answered."""
        spec = rule.spec
        if fault == "slowdown":
            headers = {}
            if spec.get("retry_after") is not None:
                headers["Retry-After"] = str(spec["retry_after"])
            self.send_error_xml(S3Error(503, "SlowDown", "Please reduce your request rate.",
                                        headers=headers), head=head)
        elif fault == "internal_error":
            self.send_error_xml(S3Error(500, "InternalError",
                                        "We encountered an internal error. Please try again."), head=head)
        elif fault == "service_unavailable":
            self.send_error_xml(S3Error(503, "ServiceUnavailable",
                                        "Service is unable to handle request."), head=head)
        elif fault == "request_timeout":
            self.send_error_xml(S3Error(400, "RequestTimeout",
                                        "Your socket connection to the server was not read from or "
                                        "written to within the timeout period."), head=head)
        elif fault == "skewed":
            self.send_error_xml(S3Error(403, "RequestTimeTooSkewed",
                                        "The difference between the request time and the current "
                                        "time is too large.",
                                        {"RequestTime": self.headers.get("x-amz-date", ""),
                                         "ServerTime": iso8601(time.time() + 3600),
                                         "MaxAllowedSkewMilliseconds": "900000"}), head=head)
        elif fault == "expired_token":
            self.send_error_xml(S3Error(400, "ExpiredToken",
                                        "The provided token has expired.",
                                        {"Token-0": "(redacted)"}), head=head)
        elif fault == "redirect":
            region = spec.get("region", "eu-west-1")
            self.send_error_xml(S3Error(301, "PermanentRedirect",
                                        "The bucket you are attempting to access must be addressed "
                                        "using the specified endpoint. Please send all future "
                                        "requests to this endpoint.",
                                        {"Endpoint": "%s.s3.%s.amazonaws.com" % (bucket, region),
                                         "Bucket": bucket},
                                        headers={"x-amz-bucket-region": region}), head=head)
        elif fault == "error":
            self.send_error_xml(S3Error(int(spec.get("status", 500)), spec.get("code", "InternalError"),
                                        spec.get("message", "Injected error.")), head=head)
        elif fault == "close":
            self.abort_connection()
        elif fault == "no_response":
            STATE.shutdown.wait(float(spec.get("seconds", 60)))
            self.abort_connection()
        elif fault == "delay":
            STATE.shutdown.wait(float(spec.get("seconds", 1)))
            return False
        elif fault == "change_object":
            with STATE.lock:
                objects = STATE.buckets.get(bucket, {})
                old = objects.get(key)
                if old is not None:
                    if "content" in spec:
                        data = spec["content"].encode("utf-8")
                    else:
                        data = old.data + spec.get("append", "\n").encode("utf-8")
                    objects[key] = StoredObject(data, max(time.time(), old.mtime + 0.001))
            return False
        else:
            return False  # body and listing faults apply to the real answer
        return True

    # ---- S3 operations

    def serve(self, op, bucket, key, params, body, head, fault, rule):
        method = self.command
        if op == "service":
            if method != "GET":
                raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")
            return self.list_buckets()
        if op in ("list", "bucket"):
            if method == "PUT":
                with STATE.lock:
                    STATE.buckets.setdefault(bucket, {})
                return self.send_answer(200, b"", {"Location": "/" + bucket})
            objects = self.bucket_objects(bucket)
            if method == "HEAD":
                return self.send_answer(200, b"", {"x-amz-bucket-region": STATE.region}, head=True)
            if method == "GET" and "location" in params:
                body_text = ('<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="%s">%s'
                             '</LocationConstraint>' % (NAMESPACE, "" if STATE.region == "us-east-1"
                                                        else STATE.region))
                return self.send_answer(200, body_text.encode())
            if method == "POST" and "delete" in params:
                return self.delete_objects(bucket, body)
            if op == "list":
                return self.list_objects_v2(bucket, objects, params, fault, rule)
            raise S3Error(501, "NotImplemented",
                          "A header or query you provided implies functionality that is not implemented.")
        objects = self.bucket_objects(bucket)
        if method == "GET" or method == "HEAD":
            return self.get_object(objects, key, head, fault, rule)
        if method == "PUT":
            if "uploadId" in params:
                return self.upload_part(params, body)
            if self.headers.get("x-amz-copy-source"):
                raise S3Error(501, "NotImplemented", "CopyObject is not implemented.")
            return self.put_object(objects, key, body)
        if method == "POST":
            if "uploads" in params:
                return self.create_multipart(bucket, key)
            if "uploadId" in params:
                return self.complete_multipart(objects, key, params, body)
            raise S3Error(501, "NotImplemented", "This POST is not implemented.")
        if method == "DELETE":
            if "uploadId" in params:
                with STATE.lock:
                    STATE.uploads.pop(params["uploadId"], None)
                return self.send_answer(204, b"")
            with STATE.lock:
                objects.pop(key, None)
            return self.send_answer(204, b"")
        raise S3Error(405, "MethodNotAllowed", "The specified method is not allowed.")

    def bucket_objects(self, bucket):
        objects = STATE.buckets.get(bucket)
        if objects is None:
            raise S3Error(404, "NoSuchBucket", "The specified bucket does not exist",
                          {"BucketName": bucket})
        return objects

    def list_buckets(self):
        with STATE.lock:
            names = sorted(STATE.buckets)
        entries = "".join("<Bucket><Name>%s</Name><CreationDate>%s</CreationDate></Bucket>"
                          % (xml_escape(n), iso8601(0)) for n in names)
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns="%s">'
                "<Owner><ID>fault-s3</ID><DisplayName>fault-s3</DisplayName></Owner>"
                "<Buckets>%s</Buckets></ListAllMyBucketsResult>" % (NAMESPACE, entries))
        self.send_answer(200, text.encode("utf-8"))

    def list_objects_v2(self, bucket, objects, params, fault, rule):
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        encoding_type = params.get("encoding-type")
        if encoding_type is not None and encoding_type != "url":
            raise S3Error(400, "InvalidArgument", "Invalid Encoding Method specified in Request",
                          {"ArgumentName": "encoding-type", "ArgumentValue": encoding_type})
        try:
            max_keys = int(params.get("max-keys", "1000"))
            if max_keys < 0:
                raise ValueError
        except ValueError:
            raise S3Error(400, "InvalidArgument", "Provided max-keys not an integer or within integer range",
                          {"ArgumentName": "max-keys"})
        max_keys = min(max_keys, 1000)
        token = params.get("continuation-token")
        start_after = params.get("start-after", "")
        if token is not None:
            try:
                raw = base64.b64decode(token.encode("ascii"), validate=True)
                if not raw.startswith(TOKEN_MARKER):
                    raise ValueError
                marker = raw[len(TOKEN_MARKER):]
            except (ValueError, binascii.Error, UnicodeEncodeError):
                raise S3Error(400, "InvalidArgument", "The continuation token provided is incorrect",
                              {"ArgumentName": "continuation-token"})
        else:
            marker = key_bytes(start_after)
        url = encoding_type == "url" and STATE.url_encoding

        def enc(text):
            return urllib.parse.quote_plus(text, safe="/", encoding="utf-8",
                                           errors="surrogateescape") if url else text

        with STATE.lock:
            snapshot = sorted(((key_bytes(k), k, o.etag, len(o.data), o.mtime)
                               for k, o in objects.items() if k.startswith(prefix)),
                              key=lambda entry: entry[0])
        contents = []
        common = []
        last_marker = None
        truncated = False
        for kb, k, etag, size, mtime in snapshot:
            if kb <= marker:
                continue
            entry_prefix = None
            if delimiter:
                rest = k[len(prefix):]
                position = rest.find(delimiter)
                if position >= 0:
                    entry_prefix = prefix + rest[:position + len(delimiter)]
            if entry_prefix is not None and common and common[-1] == entry_prefix:
                continue
            if len(contents) + len(common) >= max_keys:
                truncated = True
                break
            if entry_prefix is not None:
                common.append(entry_prefix)
                last_marker = key_bytes(entry_prefix) + b"\xff"
            else:
                contents.append((k, etag, size, mtime))
                last_marker = kb
        parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="%s">' % NAMESPACE,
                 "<Name>%s</Name>" % xml_escape(bucket),
                 "<Prefix>%s</Prefix>" % xml_escape(enc(prefix))]
        if delimiter:
            parts.append("<Delimiter>%s</Delimiter>" % xml_escape(enc(delimiter)))
        parts.append("<MaxKeys>%d</MaxKeys>" % max_keys)
        if url:
            parts.append("<EncodingType>url</EncodingType>")
        parts.append("<KeyCount>%d</KeyCount>" % (len(contents) + len(common)))
        if token is not None:
            parts.append("<ContinuationToken>%s</ContinuationToken>" % xml_escape(token))
        if truncated and last_marker is not None:
            next_token = base64.b64encode(TOKEN_MARKER + last_marker).decode("ascii")
            parts.append("<NextContinuationToken>%s</NextContinuationToken>" % xml_escape(next_token))
        if token is None and start_after:
            parts.append("<StartAfter>%s</StartAfter>" % xml_escape(enc(start_after)))
        parts.append("<IsTruncated>%s</IsTruncated>" % ("true" if truncated else "false"))
        for k, etag, size, mtime in contents:
            parts.append("<Contents><Key>%s</Key><LastModified>%s</LastModified><ETag>%s</ETag>"
                         "<Size>%d</Size><StorageClass>STANDARD</StorageClass></Contents>"
                         % (xml_escape(enc(k)), iso8601(mtime), xml_escape(etag), size))
        for p in common:
            parts.append("<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % xml_escape(enc(p)))
        parts.append("</ListBucketResult>")
        body = "".join(parts).encode("utf-8")
        if fault == "truncated_xml":
            body = body[:max(1, len(body) // 2)]
        elif fault == "invalid_xml":
            body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="'
                    + NAMESPACE.encode() + b'"><Name>' + bucket.encode() + b"</Nme><Contents><Key>&bogus;"
                    b"</Key></ListBucketResult>")
        self.send_answer(200, body, fault=fault, fault_rule=rule)

    def get_object(self, objects, key, head, fault, rule):
        with STATE.lock:
            obj = objects.get(key)
        if obj is None:
            raise S3Error(404, "NoSuchKey", "The specified key does not exist.", {"Key": key})
        if_match = self.headers.get("If-Match")
        if if_match is not None:
            wanted = [t.strip() for t in if_match.split(",")]
            if "*" not in wanted and obj.etag not in wanted:
                raise S3Error(412, "PreconditionFailed",
                              "At least one of the pre-conditions you specified did not hold",
                              {"Condition": "If-Match"})
        if_none_match = self.headers.get("If-None-Match")
        if if_none_match is not None:
            wanted = [t.strip() for t in if_none_match.split(",")]
            if "*" in wanted or obj.etag in wanted:
                return self.send_answer(304, b"", {"ETag": obj.etag}, head=True)
        headers = {"ETag": obj.etag, "Last-Modified": http_date(obj.mtime),
                   "Accept-Ranges": "bytes"}
        data = obj.data
        status = 200
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match and (match.group(1) or match.group(2)):
                size = len(data)
                if match.group(1):
                    start = int(match.group(1))
                    end = int(match.group(2)) if match.group(2) else size - 1
                else:
                    start = max(0, size - int(match.group(2)))
                    end = size - 1
                end = min(end, size - 1)
                if start >= size or start > end:
                    raise S3Error(416, "InvalidRange", "The requested range is not satisfiable",
                                  {"RangeRequested": range_header, "ActualObjectSize": str(size)})
                headers["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
                data = data[start:end + 1]
                status = 206
        if head:
            headers["Content-Length"] = str(len(data))
            return self.send_answer(status, b"", headers, content_type="binary/octet-stream", head=True)
        self.send_answer(status, data, headers, content_type="binary/octet-stream",
                         fault=fault, fault_rule=rule)

    def payload(self, body):
        if self.headers.get("x-amz-content-sha256", "").startswith("STREAMING-") or \
                "aws-chunked" in self.headers.get("Content-Encoding", ""):
            return decode_aws_chunked(body)
        return body

    def put_object(self, objects, key, body):
        data = self.payload(body)
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and base64.b64encode(hashlib.md5(data).digest()).decode() != md5:
            raise S3Error(400, "BadDigest", "The Content-MD5 you specified did not match what we received.")
        obj = StoredObject(data)
        with STATE.lock:
            objects[key] = obj
        self.send_answer(200, b"", {"ETag": obj.etag})

    def create_multipart(self, bucket, key):
        with STATE.lock:
            STATE.upload_serial += 1
            upload_id = "upload-%d-%s" % (STATE.upload_serial, hashlib.md5(key_bytes(key)).hexdigest())
            STATE.uploads[upload_id] = {"bucket": bucket, "key": key, "parts": {}}
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult xmlns="%s">'
                "<Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                % (NAMESPACE, xml_escape(bucket), xml_escape(key), upload_id))
        self.send_answer(200, text.encode("utf-8"))

    def upload_part(self, params, body):
        data = self.payload(body)
        with STATE.lock:
            upload = STATE.uploads.get(params["uploadId"])
            if upload is None:
                raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.")
            upload["parts"][int(params.get("partNumber", "1"))] = data
        self.send_answer(200, b"", {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})

    def complete_multipart(self, objects, key, params, body):
        with STATE.lock:
            upload = STATE.uploads.pop(params["uploadId"], None)
        if upload is None:
            raise S3Error(404, "NoSuchUpload", "The specified upload does not exist.")
        numbers = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
        if not numbers:
            numbers = sorted(upload["parts"])
        data = b"".join(upload["parts"][n] for n in numbers)
        digest = hashlib.md5(b"".join(hashlib.md5(upload["parts"][n]).digest() for n in numbers))
        obj = StoredObject(data, etag='"%s-%d"' % (digest.hexdigest(), len(numbers)))
        with STATE.lock:
            objects[key] = obj
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult xmlns="%s">'
                "<Key>%s</Key><ETag>%s</ETag></CompleteMultipartUploadResult>"
                % (NAMESPACE, xml_escape(key), xml_escape(obj.etag)))
        self.send_answer(200, text.encode("utf-8"))

    def delete_objects(self, bucket, body):
        objects = self.bucket_objects(bucket)
        keys = [k.decode("utf-8") for k in re.findall(rb"<Key>(.*?)</Key>", body, re.S)]
        keys = [k.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"')
                .replace("&apos;", "'").replace("&amp;", "&") for k in keys]
        with STATE.lock:
            for k in keys:
                objects.pop(k, None)
        text = ('<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult xmlns="%s">%s</DeleteResult>'
                % (NAMESPACE, "".join("<Deleted><Key>%s</Key></Deleted>" % xml_escape(k) for k in keys)))
        self.send_answer(200, text.encode("utf-8"))

    # ---- admin API

    def admin(self, raw_path, raw_query, body):
        method = self.command
        segments = raw_path.split("/", 3)  # ['', '__x', bucket, key]
        what = segments[1]
        query = dict(urllib.parse.parse_qsl(raw_query))
        try:
            if what == "__object" and len(segments) == 4:
                bucket = urllib.parse.unquote(segments[2])
                key = urllib.parse.unquote(segments[3], errors="surrogateescape")
                with STATE.lock:
                    objects = STATE.buckets.get(bucket)
                    if objects is None:
                        return self.send_json(404, {"error": "no such bucket"})
                    if method == "PUT":
                        mtime = float(query["mtime"]) if "mtime" in query else None
                        obj = StoredObject(body, mtime)
                        objects[key] = obj
                        return self.send_json(200, {"etag": obj.etag, "size": len(body)})
                    obj = objects.get(key)
                    if method == "DELETE":
                        objects.pop(key, None)
                        return self.send_json(200, {"deleted": obj is not None})
                if method == "GET":
                    if obj is None:
                        return self.send_json(404, {"error": "no such key"})
                    return self.send_answer(200, obj.data, {"ETag": obj.etag},
                                            content_type="binary/octet-stream")
            elif what == "__objects" and len(segments) >= 3 and method == "GET":
                bucket = urllib.parse.unquote(segments[2])
                with STATE.lock:
                    objects = STATE.buckets.get(bucket)
                    if objects is None:
                        return self.send_json(404, {"error": "no such bucket"})
                    listing = [{"key": k, "etag": o.etag, "size": len(o.data)}
                               for k, o in sorted(objects.items(), key=lambda e: key_bytes(e[0]))]
                return self.send_json(200, listing)
            elif what == "__bucket" and len(segments) >= 3 and method == "PUT":
                with STATE.lock:
                    STATE.buckets.setdefault(urllib.parse.unquote(segments[2]), {})
                return self.send_json(200, {"ok": True})
            elif what == "__config" and method == "POST":
                config = json.loads(body or b"{}")
                with STATE.lock:
                    if "allow_anonymous" in config:
                        STATE.allow_anonymous = bool(config["allow_anonymous"])
                    if "url_encoding" in config:
                        STATE.url_encoding = bool(config["url_encoding"])
                    if "region" in config:
                        STATE.region = str(config["region"])
                    if "credentials" in config:
                        STATE.credentials = {
                            c["access_key"]: {"secret_key": c["secret_key"],
                                              "session_token": c.get("session_token")}
                            for c in config["credentials"]}
                return self.send_json(200, {"ok": True})
            elif what == "__fault":
                if method == "GET":
                    with STATE.lock:
                        answer = {
                            "rules": [r.describe() for r in STATE.rules],
                            "requests": dict(STATE.requests),
                            "requests_total": sum(STATE.requests.values()),
                            "injected": dict(STATE.injected),
                            "injected_total": STATE.injected_total,
                        }
                    return self.send_json(200, answer)
                if method == "DELETE":
                    with STATE.lock:
                        STATE.rules = []
                    return self.send_json(200, {"ok": True})
                if method == "POST":
                    spec = json.loads(body or b"{}")
                    specs = spec.get("rules", []) if "rules" in spec else [spec]
                    with STATE.lock:
                        rules = []
                        for s in specs:
                            STATE.rule_serial += 1
                            rules.append(Rule(s, STATE.rule_serial))
                        if spec.get("replace"):
                            STATE.rules = rules
                        else:
                            STATE.rules.extend(rules)
                    return self.send_json(200, {"ok": True, "rules": len(STATE.rules)})
            elif what == "__requests" and method == "GET":
                with STATE.lock:
                    answer = list(STATE.request_log)
                return self.send_json(200, answer)
            elif what == "__reset" and method == "POST":
                with STATE.lock:
                    STATE.reset_counters()
                return self.send_json(200, {"ok": True})
            elif what == "__health":
                return self.send_json(200, {"ok": True})
        except (ValueError, KeyError, TypeError) as error:
            return self.send_json(400, {"error": str(error)})
        self.send_json(404, {"error": "unknown admin request %s %s" % (method, raw_path)})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64


def main():
    global STATE, LOG
    parser = argparse.ArgumentParser(description="Fault-injecting S3 stub (127.0.0.1 only).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--bucket", action="append", default=None)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--access-key", default="S3RVER")
    parser.add_argument("--secret-key", default="S3RVER")
    parser.add_argument("--session-token", default=None)
    parser.add_argument("--allow-anonymous", action="store_true")
    parser.add_argument("--state-file", default=None)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if args.address != "127.0.0.1":
        parser.error("the fault server binds to 127.0.0.1 only")
    if args.bucket is None:
        args.bucket = ["landing"]

    STATE = State(args)
    if args.state_file and os.path.exists(args.state_file):
        STATE.load(args.state_file)
    if args.verbose:
        LOG = sys.stderr

    server = Server(("127.0.0.1", args.port), Handler)
    stopping = threading.Event()

    def stop(signum, frame):
        if stopping.is_set():
            return
        stopping.set()
        STATE.shutdown.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print("S3 listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if args.state_file:
            STATE.save(args.state_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
