"""Triage at scale: ``locate`` on many recordings, grouped by the culprit (the last write to an expression).

Each recording is examined on its own by :func:`examine`, a function of a :class:`Job` (plain values in, a
:class:`RecordingResult` out), so it runs the same in this process, in local worker processes
(:class:`LocalExecutor`, ``concurrent.futures``) or on a Dask cluster (:class:`DaskExecutor`, ``dask://HOST:PORT``):

* the recording is read and checked (:func:`replay.recording.load_recording`); one that cannot be is an *error*
  with its reason, and the run goes on;
* its End event says how the guest ended: exited with code 0 is *passed*, and a passed recording is not located
  unless asked (``locate_passing``): a user triaging failures wants the passing runs set apart, not searched;
* anything else (a non-zero exit, a fault, a reset, idling forever, a cut or damaged recording without an End)
  is *failed*, and :func:`gdbstub.locate.locate` finds the last write to the expression before the end.

:func:`group_results` then groups the results by (outcome, culprit): the culprit is the function, file:line and
pc of the last write (``group_by`` may drop the pc, or the line too); failed recordings where nothing wrote the
expression form one group, errors one group per reason, passed recordings one group (per culprit, if located).

The modules, one job each: :mod:`.results` (the values), :mod:`.grouping`, :mod:`.report` (text and JSON),
:mod:`.find` (the recordings named), :mod:`.worker` (:func:`examine`, what every executor runs; it keeps the
guest symbols of :mod:`.symbols_cache` from one recording to the next), :mod:`.executor` (the seam),
:mod:`.local` (with :mod:`.timed_pool` for a time limit per recording) and :mod:`.dask` (the executors),
:mod:`.run` (:func:`triage`, :func:`make_executor`).
"""

from __future__ import annotations

from .dask import INSTALL_DASK, DaskExecutor, dask_address, require_dask
from .executor import Executor, OnResult, result_of
from .find import RECORDING_SUFFIX, find_recordings
from .grouping import GROUPINGS, Group, GroupKey, group_results, key_of
from .local import LocalExecutor
from .report import TriageReport
from .results import Culprit, Ending, Job, Outcome, RecordingResult, TriageError
from .run import make_executor, triage
from .worker import examine, read_ending

_result_of = result_of  # (its name before the split into a package)

__all__ = ["GROUPINGS", "INSTALL_DASK", "RECORDING_SUFFIX", "Culprit", "DaskExecutor", "Ending", "Executor", "Group",
           "GroupKey", "Job", "LocalExecutor", "OnResult", "Outcome", "RecordingResult", "TriageError",
           "TriageReport", "dask_address", "examine", "find_recordings", "group_results", "key_of",
           "make_executor", "read_ending", "require_dask", "result_of", "triage"]  # fmt: skip
