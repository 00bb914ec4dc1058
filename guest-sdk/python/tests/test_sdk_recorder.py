"""Event validation: the rules the host applies, and the recorder's formatting."""

import pytest
from wasm_reconciler_sdk import EventType, InvalidAnnotationError, InvalidReasonError, Recorder
from wasm_reconciler_sdk.recorder import (
    MAX_ANNOTATIONS_BYTES,
    MAX_MESSAGE_BYTES,
    truncate_message,
    validate_annotations,
    validate_reason,
)
from wasm_reconciler_sdk.testkit import FakeRecorder, RecordedEvent


@pytest.mark.parametrize("reason", ["Created", "A", "Scaled2Replicas", "A" * 128])
def test_upper_camel_case_reasons_are_accepted(reason):
    validate_reason(reason)


@pytest.mark.parametrize(
    "reason",
    ["", "created", "1Created", "Not Created", "Not-Created", "Créé", "Ünicode", "A" * 129, None],
)
def test_other_reasons_are_refused(reason):
    with pytest.raises(InvalidReasonError):
        validate_reason(reason)


def annotation(key):
    return [(key, "v")]


@pytest.mark.parametrize("key", ["a", "example.com/trace-id", "A_b.c-D", "x/y", "n" * 63])
def test_qualified_annotation_keys_are_accepted(key):
    validate_annotations(annotation(key))


@pytest.mark.parametrize(
    "key", ["", "/a", "a/", "Example.com/a", "a b", "-a", "a-", "a/b/c", "n" * 64, "é"]
)
def test_other_annotation_keys_are_refused(key):
    with pytest.raises(InvalidAnnotationError):
        validate_annotations(annotation(key))


def test_duplicate_and_oversized_annotations_are_refused():
    with pytest.raises(InvalidAnnotationError, match="duplicate"):
        validate_annotations([("a", "1"), ("a", "2")])
    with pytest.raises(InvalidAnnotationError, match="bytes"):
        validate_annotations([("a", "v" * MAX_ANNOTATIONS_BYTES)])
    validate_annotations([("a", "v" * (MAX_ANNOTATIONS_BYTES - 1))])


def test_long_messages_are_cut_on_a_character_boundary():
    exact = "x" * MAX_MESSAGE_BYTES
    assert truncate_message(exact) == exact
    long = "x" * (MAX_MESSAGE_BYTES - 5) + "ü" * 10
    cut = truncate_message(long)
    assert len(cut.encode()) <= MAX_MESSAGE_BYTES
    assert cut.endswith("x ...")
    cut = truncate_message("é" * MAX_MESSAGE_BYTES)
    assert len(cut.encode()) <= MAX_MESSAGE_BYTES and set(cut[:-4]) == {"é"}


def test_formatting_helpers_accept_types_and_strings():
    fake = FakeRecorder()
    recorder = Recorder(fake)
    recorder.eventf(EventType.Normal, "Created", "Created %s", "demo")
    recorder.eventf("Warning", "Failed", "%s failed %d times", "demo", 2)
    recorder.eventf(EventType.Normal, "Done", "100% done")  # no args: no formatting
    recorder.annotated_eventf({"a": "1"}, EventType.Warning, "Slow", "took %ds", 3)
    recorder.annotated_event([("b", "2")], "Normal", "Plain", "plain")

    assert fake.events == [
        RecordedEvent.normal("Created", "Created demo"),
        RecordedEvent.warning("Failed", "demo failed 2 times"),
        RecordedEvent.normal("Done", "100% done"),
        RecordedEvent.warning("Slow", "took 3s").with_annotation("a", "1"),
        RecordedEvent.normal("Plain", "plain").with_annotation("b", "2"),
    ]
    with pytest.raises(ValueError):
        recorder.event("Error", "Nope", "not a type Kubernetes knows")


def test_fake_recorder_refuses_what_the_host_refuses_and_keeps_it_apart():
    fake = FakeRecorder()
    recorder = Recorder(fake)
    recorder.event(EventType.Normal, "Created", "m")
    with pytest.raises(InvalidReasonError):
        recorder.event(EventType.Normal, "created", "m")
    assert fake.events == [RecordedEvent.normal("Created", "m")]
    assert [r.event.reason for r in fake.rejected] == ["created"]
    assert isinstance(fake.rejected[0].error, InvalidReasonError)
