"""The OpenAPI 3.1 document of the REST sidecar, built from its route table.

The request-body schemas here are also what the server validates bodies against
(:func:`body_validator`), so the document and the parser cannot drift apart.
``python -m cndp.telemetry.rest --openapi`` prints the document (``docs/openapi.json``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator

from .. import __version__

__all__ = ["BODIES", "NAME_MAX", "SCHEMAS", "body_validator", "build"]

NAME_MAX = 40  # lport/thread names in a path; the telemetry request is at most 56 bytes

_STR = {"type": "string"}
_INT = {"type": "integer"}
_BOOL = {"type": "boolean"}

# request bodies: self-contained (no $ref), additionalProperties false
BODIES: dict[str, dict[str, Any]] = {
    "AdminState": {
        "type": "object",
        "description": "Admin state of an lport (software only, as CNDP's pktdev admin state).",
        "required": ["state"],
        "additionalProperties": False,
        "properties": {"state": {"enum": ["up", "down"]}},
    },
    "ThreadState": {
        "type": "object",
        "description": "Pause (CNDP /app/stop) or resume (/app/start) a worker thread.",
        "required": ["state"],
        "additionalProperties": False,
        "properties": {"state": {"enum": ["running", "paused"]}},
    },
    "Mode": {
        "type": "object",
        "description": "A forwarding mode the running application can switch to.",
        "required": ["mode"],
        "additionalProperties": False,
        "properties": {
            "mode": {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[a-z-]+$"}
        },
    },
    "LogLevel": {
        "type": "object",
        "description": "A log level: a name (debug..emerg, Python's or CNDP's) or CNDP's 1..8.",
        "required": ["level"],
        "additionalProperties": False,
        "properties": {
            "level": {
                "oneOf": [
                    {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 16,
                        "pattern": "^[A-Za-z0-9]+$",
                    },
                    {"type": "integer", "minimum": 1, "maximum": 8},
                ]
            }
        },
    },
    "ClearStats": {
        "type": "object",
        "description": "Which lports to clear; no body or no 'ports' clears every lport.",
        "additionalProperties": False,
        "properties": {
            "ports": {
                "type": "array",
                "minItems": 1,
                "maxItems": 256,
                "uniqueItems": True,
                "items": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
            }
        },
    },
}

_PORT_STATE = {
    "type": "object",
    "properties": {
        "id": _INT,
        "name": _STR,
        "netdev": _STR,
        "qid": _INT,
        "pmd_name": _STR,
        "thread": {"type": ["string", "null"]},
        "admin": {"enum": ["up", "down"]},
        "admin_up": _BOOL,
        "admin_applied": _BOOL,
        "open": _BOOL,
        "bound": _BOOL,
        "xsk": _BOOL,
        "xskmap": _BOOL,
        "closed": _BOOL,
        "clear_pending": _BOOL,
    },
}
_COUNTERS = {"type": "object", "additionalProperties": _INT}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["error", "status"],
        "properties": {
            "error": {"type": "string", "description": "what is wrong"},
            "status": {"type": "integer", "description": "the HTTP status, again"},
            "fix": {"type": "string", "description": "how to fix it, when known"},
        },
    },
    "Live": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "fail"]},
            "pid": _INT,
            "version": _STR,
            "socket": _STR,
            "error": _STR,
        },
    },
    "Ready": {
        "type": "object",
        "required": ["ready", "reasons"],
        "properties": {
            "ready": _BOOL,
            "reasons": {"type": "array", "items": _STR},
            "workers": {"type": "object", "additionalProperties": {"type": "object"}},
            "ports": {"type": "object", "additionalProperties": {"type": "object"}},
        },
    },
    "App": {
        "type": "object",
        "properties": {
            "name": _STR,
            "pid": _INT,
            "hostname": _STR,
            "version": _STR,
            "mode": _STR,
            "api": _STR,
            "started": {"type": "number"},
            "uptime_s": {"type": "number"},
            "socket": _STR,
        },
    },
    "Config": {
        "type": "object",
        "description": "The resolved jsonc configuration (as cndp-jsonc prints it).",
    },
    "Threads": {
        "type": "object",
        "properties": {
            "threads": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": _INT,
                        "name": _STR,
                        "group": _STR,
                        "type": _STR,
                        "ports": {"type": "array", "items": _STR},
                        "status": {"enum": ["running", "paused", "main"]},
                    },
                },
            }
        },
    },
    "PortState": _PORT_STATE,
    "Ports": {"type": "object", "properties": {"ports": {"type": "array", "items": _PORT_STATE}}},
    "Port": {
        "type": "object",
        "properties": {"port": _PORT_STATE, "stats": _COUNTERS},
    },
    "Stats": {
        "type": "object",
        "properties": {
            "ports": {"type": "object", "additionalProperties": _COUNTERS},
            "netdevs": {"type": "object", "additionalProperties": _COUNTERS},
            "workers": {"type": "object", "additionalProperties": _COUNTERS},
        },
    },
    "Cleared": {
        "type": "object",
        "properties": {"cleared": {"type": "array", "items": _STR}, "pending": _BOOL},
    },
    "Graph": {
        "type": "object",
        "properties": {
            "name": _STR,
            "mode": _STR,
            "nodes": {"type": "array", "items": {"type": "object"}},
            "edges": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"from": _STR, "to": _STR},
                },
            },
        },
    },
    "ModeState": {
        "type": "object",
        "properties": {
            "mode": _STR,
            "active": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "modes": {"type": "array", "items": _STR},
            "pending": _BOOL,
        },
    },
    "LogLevelState": {"type": "object", "properties": {"level": _STR}},
    "ThreadStates": {
        "type": "object",
        "properties": {
            "threads": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": _STR, "status": _STR}},
            }
        },
    },
    "PortsChanged": {
        "type": "object",
        "properties": {
            "ports": {"type": "array", "items": _PORT_STATE},
            "pending": _BOOL,
        },
    },
    "Index": {"type": "object", "properties": {"openapi": _STR, "paths": {"type": "array"}}},
    "OpenApi": {"type": "object", "description": "This document."},
}
SCHEMAS.update(BODIES)

_ERRORS = {
    400: "bad request: path parameter, query or body",
    404: "no such route, lport or thread",
    405: "method not allowed (the Allow header lists the methods)",
    409: "the application cannot do this now (e.g. a mode it cannot switch to)",
    411: "a body without Content-Length",
    413: "body larger than 64 KiB",
    415: "a body that is not application/json",
    502: "the application answered something unexpected",
    503: "the application's telemetry socket does not answer",
}


def body_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(BODIES[name])


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def build(routes: Iterable[Any]) -> dict[str, Any]:
    """The OpenAPI document of ``routes`` (the REST module's route table)."""
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": r.op,
            "summary": r.summary,
            "tags": [r.tag],
        }
        if r.description:
            op["description"] = r.description
        params = [seg[1:-1] for seg in r.template.split("/") if seg.startswith("{")]
        if params:
            op["parameters"] = [
                {
                    "name": p,
                    "in": "path",
                    "required": True,
                    "description": f"{p} name (percent-encoded); 'all' where the summary says",
                    "schema": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
                }
                for p in params
            ]
        if r.body:
            op["requestBody"] = {
                "required": r.body_required,
                "content": {"application/json": {"schema": _ref(r.body)}},
            }
        responses: dict[str, Any] = {}
        for code, (desc, schema) in sorted(r.responses.items()):
            responses[str(code)] = {
                "description": desc,
                "content": {"application/json": {"schema": _ref(schema)}},
            }
        for code in r.errors:
            responses.setdefault(
                str(code),
                {
                    "description": _ERRORS[code],
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            )
        op["responses"] = responses
        paths.setdefault(r.template, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "pycndp REST control sidecar",
            "version": __version__,
            "description": (
                "Reads and changes the run-time state of one CNDP application through its "
                "telemetry socket. Bodies are JSON (Content-Type: application/json); every "
                "error is a JSON object with 'error' and 'status'. Bound to loopback or a "
                "Unix socket by default; no authentication."
            ),
        },
        "servers": [{"url": "http://127.0.0.1:9471"}],
        "paths": paths,
        "components": {"schemas": {k: SCHEMAS[k] for k in sorted(SCHEMAS)}},
    }
