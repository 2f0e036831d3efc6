"""``--expect``: UART input from a file released a line at a time, each when the guest has prompted for it."""

from __future__ import annotations

import os

import pytest

from machine.inputs import HostInputs, PromptGate


def show(gate: PromptGate, text: bytes) -> None:
    for byte in text:
        gate.saw_output(byte)


def test_lines_wait_for_prompts() -> None:
    gate = PromptGate([b"=> "])
    pending = b"version\nprint x\nlast"
    assert gate.allowed(pending, ended=False) == 0  # no prompt yet
    show(gate, b"U-Boot\r\n=")
    assert gate.allowed(pending, ended=False) == 0  # half a prompt
    show(gate, b"> ")
    assert gate.allowed(pending, ended=False) == len(b"version\n")
    gate.took(b"vers")  # the FIFO took part of it: the line is still the one released
    assert gate.allowed(pending[4:], ended=False) == len(b"ion\n")
    gate.took(b"ion\n")
    assert gate.allowed(b"print x\nlast", ended=False) == 0  # the next line waits for the next prompt
    show(gate, b"version 1\r\n=> ")
    assert gate.allowed(b"print x\nlast", ended=False) == len(b"print x\n")
    gate.took(b"print x\n")
    show(gate, b"=> ")
    assert gate.allowed(b"last", ended=False) == 0  # not a whole line: wait for the rest of it...
    assert gate.allowed(b"last", ended=True) == 4  # ... unless the input has ended


def test_any_of_several_prompts_and_prompts_counted_once() -> None:
    gate = PromptGate([b"Hit any key to stop autoboot", b"=> "])
    show(gate, b"Hit any key to stop autoboot:  2 ")
    assert gate.allowed(b"\nversion\n", ended=False) == 1
    show(gate, b"=> ")  # a second prompt before the first line was taken: two lines may go
    assert gate.allowed(b"\nversion\nmore\n", ended=False) == len(b"\nversion\n")


def test_an_empty_prompt_is_refused() -> None:
    with pytest.raises(ValueError):
        PromptGate([b""])


def test_host_inputs_hold_gated_input_and_do_not_wake_the_guest() -> None:
    read, write = os.pipe()
    os.write(write, b"hello\n")
    os.close(write)
    gate = PromptGate([b"$ "])
    live = HostInputs(read, gate=gate)
    live._take(block=True, timeout=60)  # noqa: SLF001 - wait for the reader thread to deliver the file
    assert live._pending == b"hello\n"  # noqa: SLF001
    assert live.poll_input(0, 16) == b""
    outcome = live.idle(0, deadline_ns=None)  # held input cannot wake an idle guest: it waits for ever
    assert outcome.forever
    show(gate, b"$ ")
    assert live.poll_input(100, 16) == b"hello\n"
