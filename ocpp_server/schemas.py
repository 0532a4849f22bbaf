"""Payload validation against an OCPP version's official JSON schemas, with no I/O.

Every OCPP-J version ships one JSON schema per request and per response; the ``ocpp`` package
carries them (``ocpp.v16/schemas``, ``ocpp.v201/schemas``). A :class:`SchemaSet` checks payloads
against one version's files and maps the first violation onto that version's error code:

=========================== =================================================================
schema keyword              error code (its meaning in OCPP-J)
=========================== =================================================================
``type``, ``maxLength``     TypeConstraintViolation (a CiStringNType is a data type)
``required``                occurrence: a mandatory field occurs 0 times
``minItems``/``maxItems``   occurrence
``enum``, ``format``, ...   PropertyConstraintViolation (a field holds an invalid value)
``additionalProperties``    formation: the payload is not the action's PDU
=========================== =================================================================

The occurrence and formation codes are spelled differently by each version (1.6:
``OccurenceConstraintViolation``, ``FormationViolation``; 2.0.1:
``OccurrenceConstraintViolation``, ``FormatViolation``): an :class:`ErrorSpelling` gives them,
and :meth:`ErrorSpelling.wire_code` turns any code the version-neutral OCPP-J layer raises
(written in 1.6's spelling) into the version's own.

An action the version does not define is ``NotImplemented`` ("not known by receiver"); one it
defines that Strom does not serve is ``NotSupported`` (the connection decides that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from ocpp_server.ocppj import (
    Call,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    parse_timestamp,
)

__all__ = ["ErrorSpelling", "SchemaSet"]


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the "type" keyword reports non-strings
    try:
        parse_timestamp(value)
    except PayloadInvalid:
        return False
    return True


_FORMATS: Final = FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)


@dataclass(frozen=True, slots=True)
class ErrorSpelling:
    """How one OCPP version spells the error codes that differ between versions.

    Attributes:
        formation: the code for a payload or frame that is not the PDU it should be.
        occurrence: the code for a field that occurs too few or too many times.
    """

    formation: ErrorCode
    occurrence: ErrorCode

    def wire_code(self, code: ErrorCode) -> ErrorCode:
        """The version's spelling of ``code`` (a code raised in OCPP 1.6's spelling)."""
        if code in (ErrorCode.FORMATION_VIOLATION, ErrorCode.FORMAT_VIOLATION):
            return self.formation
        if code in (
            ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
            ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
        ):
            return self.occurrence
        return code


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """One OCPP version's schemas and error codes (see the module docstring).

    Attributes:
        version: the version's name, for messages (``OCPP 1.6``).
        package: the package holding the ``schemas`` directory (``ocpp.v16``).
        validator: the JSON Schema draft the files are written in.
        request_suffix: appended to the action to name a request's file (``""`` in 1.6,
            ``"Request"`` in 2.0.1); a response's file is ``<action>Response``.
        spelling: the version's error-code spellings.
        known_actions: every action the version defines (others are ``NotImplemented``).
        always_strict_length: fields whose length is checked even for a charger whose profile
            tolerates over-long strings (identifiers Strom stores and compares).
    """

    version: str
    package: str
    validator: type[Validator]
    request_suffix: str
    spelling: ErrorSpelling
    known_actions: frozenset[str]
    always_strict_length: frozenset[str] = field(default_factory=frozenset)

    def _code_by_keyword(self) -> Mapping[str, ErrorCode]:
        return {
            "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "minLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
            "required": self.spelling.occurrence,
            "minItems": self.spelling.occurrence,
            "maxItems": self.spelling.occurrence,
            "additionalProperties": self.spelling.formation,
        }

    def _validator(self, schema_name: str) -> Validator | None:
        return _load(self.package, self.validator, schema_name)

    def _tolerated(self, error: ValidationError) -> bool:
        if error.validator != "maxLength":
            return False
        path = list(error.absolute_path)
        return not path or path[-1] not in self.always_strict_length

    def _check(
        self, validator: Validator, payload: Mapping[str, Any], *, lenient_lengths: bool
    ) -> None:
        if validator.is_valid(payload):
            return
        errors: Iterable[ValidationError] = validator.iter_errors(payload)
        if lenient_lengths:
            errors = [error for error in errors if not self._tolerated(error)]
        error = best_match(errors)
        if error is None:
            return
        code = self._code_by_keyword().get(
            str(error.validator), ErrorCode.PROPERTY_CONSTRAINT_VIOLATION
        )
        raise PayloadInvalid(code, _describe(error))

    def validate_call(self, call: Call, *, lenient_lengths: bool = False) -> None:
        """Check a CALL's action and payload against the version's request schemas.

        Args:
            call: the parsed CALL.
            lenient_lengths: tolerate over-long strings (a per-charger quirk), except for
                the always-strict fields.

        Raises:
            FrameRejected: with ``NotImplemented`` for an action the version does not define,
                or the code of the first schema violation.
        """
        if call.action not in self.known_actions:
            raise FrameRejected(
                call.unique_id, ErrorCode.NOT_IMPLEMENTED, f"unknown action {call.action[:40]!r}"
            )
        validator = self._validator(call.action + self.request_suffix)
        if validator is None:  # pragma: no cover - every known action ships a schema
            raise FrameRejected(call.unique_id, ErrorCode.NOT_SUPPORTED, "no schema for the action")
        try:
            self._check(validator, call.payload, lenient_lengths=lenient_lengths)
        except PayloadInvalid as exc:
            raise FrameRejected(call.unique_id, exc.code, exc.description) from exc

    def validate_result(
        self, action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
    ) -> None:
        """Check the payload of a CALLRESULT answering ``action`` against its schema.

        Raises:
            PayloadInvalid: the payload breaks the response schema.
            ValueError: ``action`` is not an action of the version (a bug on our side).
        """
        validator = self._validator(f"{action}Response")
        if validator is None:
            raise ValueError(f"no {self.version} response schema for {action!r}")
        self._check(validator, payload, lenient_lengths=lenient_lengths)

    def validate_request(self, action: str, payload: Mapping[str, Any]) -> None:
        """Check a request payload we are about to send (a failure is a bug on our side).

        Raises:
            PayloadInvalid: the payload breaks the request schema.
            ValueError: ``action`` is not an action of the version.
        """
        validator = self._validator(action + self.request_suffix)
        if validator is None or action not in self.known_actions:
            raise ValueError(f"no {self.version} request schema for {action!r}")
        self._check(validator, payload, lenient_lengths=False)


@cache
def _load(package: str, validator: type[Validator], schema_name: str) -> Validator | None:
    schema_file = resources.files(package).joinpath("schemas", f"{schema_name}.json")
    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return None
    return validator(schema, format_checker=_FORMATS)


def _describe(error: ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "payload"
    if error.validator == "required":
        return f"{where}: a required field is missing"
    if error.validator == "additionalProperties":
        return f"{where}: has a field the schema does not define"
    if error.validator == "maxLength":
        return f"{where}: longer than {error.validator_value} characters"
    if error.validator == "type":
        return f"{where}: expected {error.validator_value}"
    if error.validator == "enum":
        return f"{where}: not one of the allowed values"
    if error.validator == "format":
        return f"{where}: not an RFC 3339 date-time"
    return f"{where}: breaks the {error.validator} rule"
