"""The loop between a runner and the pool's workers, and what it found."""

from __future__ import annotations

import collections
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from bandit_tune.driver.arms import results_before_last_exploit
from bandit_tune.driver.runner import Runner, retry_limit
from bandit_tune.objective import best_of, orient
from bandit_tune.policies.base import ArmState, Decision
from bandit_tune.pool.lifecycle import IDLE_TIMEOUT_S, _replace, _workers, discard, keep_idle
from bandit_tune.pool.worker import checkpoint_step, latest_checkpoint


@dataclass
class PoolResult:
    """What :func:`run_arms` found.

    Attributes:
        best_arm: the arm with the best reported value (first objective).
        best_config: its configuration.
        best_score: its best value, as reported.
        arms: one row per arm: ``arm``, ``config``, ``state``, ``epochs``, ``best``,
            ``last``, ``error``.
        results: every arm's reported metrics, epoch by epoch.
        decisions: every arm's ``(step, score, decision)`` history (score as the
            policy saw it: higher is better).
        epochs: epochs trained (results reported), replays after a resume included.
        seconds: wall seconds of this call.
        workers: worker actors the search used.
        path: the project folder (state, checkpoints).
        stop_reason: why a budget ended the search (``None``: the policy finished).
        lineage: a population-based policy's exploits per arm (see
            :class:`~bandit_tune.driver.Arm`); :func:`bandit_tune.driver.lineage.schedule`
            turns them into each arm's schedule.
    """

    best_arm: str | None
    best_config: dict[str, Any] | None
    best_score: float
    arms: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    decisions: dict[str, list[tuple[int, Any, str]]] = field(default_factory=dict)
    epochs: int = 0
    seconds: float = 0.0
    workers: int = 0
    path: str = ""
    stop_reason: str | None = None
    lineage: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def dataframe(self) -> Any:
        """The arms as a pandas DataFrame, best first."""
        import pandas as pd

        rows = [
            {
                "arm": r["arm"],
                **r["config"],
                **{k: v for k, v in r.items() if k not in ("arm", "config")},
            }
            for r in self.arms
        ]
        return pd.DataFrame(rows)


class PoolSearch:
    """The loop between a :class:`~bandit_tune.driver.Runner` and the pool's workers.

    :func:`run_arms` makes one per call; ``BanditTuner(backend="pool")`` drives its
    own runner (its scheduler's) through one. New arms take ``configs`` in order
    (:attr:`next_config` is the position a snapshot keeps).
    """

    def __init__(
        self,
        cls: Any,
        configs: list[dict[str, Any]],
        runner: Runner,
        metrics: list[str],
        cpus: float,
        gpus: float,
        max_concurrent: int | None,
        path: str,
        max_failures: int,
        keep_paused: int,
        step_key: str | None = None,
    ) -> None:
        self.cls, self.configs, self.metrics = cls, configs, metrics
        self.cpus, self.gpus, self.max_concurrent = cpus, gpus, max_concurrent
        self.path, self.arms_dir = path, os.path.join(path, "arms")
        self.max_failures, self.keep = max_failures, keep_paused
        self.step_key = step_key
        self.runner = runner
        #: Seconds the workers stay idle for the next search once this one ends.
        self.idle_timeout: float | None = IDLE_TIMEOUT_S
        # a population-based policy exploits checkpoints at its decision steps
        policy = runner.policy
        exploits = getattr(policy, "mutable_keys", None) is not None
        self.save_at = list(policy.decision_steps() or ()) if exploits else []
        #: Arms whose pause's checkpoint write was overtaken by an exploit's copy.
        self.stale: set[str] = set()
        runner.state_path = os.path.join(path, "state.json")
        runner.root = path
        self.next_config = 0
        self.finished = False
        #: Arms that ended with an error: their last traceback lines.
        self.errors: dict[str, str] = {}
        self.epochs = 0
        self.succeeded = False
        #: Keyword arguments for every arm's ``setup`` (or function), put into Ray once.
        self.parameters: dict[str, Any] = {}
        self.parameter_refs: dict[str, Any] = {}
        self.workers: list[Any] = []
        self.fingerprint = {
            "n_configs": len(configs),
            "policy": type(runner.policy).__name__,
            "metric": metrics,
            "class": getattr(cls, "__name__", type(cls).__name__),
        }

    def position(self) -> dict[str, Any]:
        """What a snapshot keeps of this loop: the next configuration, the errors."""
        return {"next_config": self.next_config, "errors": self.errors}

    def set_position(self, extra: dict[str, Any]) -> None:
        """Take up :meth:`position` from a snapshot's ``extra``."""
        self.next_config = int(extra.get("next_config", 0))
        self.errors = dict(extra.get("errors") or {})

    def extra_state(self) -> dict[str, Any]:
        """:func:`run_arms`' part of the snapshot."""
        return {
            **self.position(),
            "finished": self.finished,
            "fingerprint": self.fingerprint,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take up :func:`run_arms`' snapshot of the same search (refused for another)."""
        extra = state.get("extra", {})
        if extra.get("fingerprint") != self.fingerprint:
            raise ValueError(
                f"the project {self.path} holds another search ({extra.get('fingerprint')}, "
                f"this one is {self.fingerprint}); pass overwrite=True to start afresh, or "
                "another project_name"
            )
        try:
            self.runner.restore(state)
        except (ValueError, KeyError) as exc:
            raise ValueError(
                f"cannot resume the search in {self.path}: {exc}; pass "
                "overwrite=True to start afresh"
            ) from exc
        self.set_position(extra)
        self.finished = bool(extra.get("finished"))

    # -- the loop ----------------------------------------------------------------------
    def run(self, address: str | None) -> PoolResult:
        """Start (or reuse) the workers and run the arms until the policy is done.

        A Ctrl-C saves the state and raises ``KeyboardInterrupt``; any other error
        saves it and propagates.
        """
        import ray

        from bandit_tune.ray_tune.cluster import ensure_ray

        started = time.perf_counter()
        resources = ensure_ray(address)
        slots = self.max_concurrent or max(1, int(resources.get("CPU", 1) / self.cpus + 1e-9))
        if self.gpus:
            slots = min(slots, max(1, int(resources.get("GPU", 0) / self.gpus + 1e-9)))
        self.runner.slots = slots
        os.makedirs(self.arms_dir, exist_ok=True)
        workers = _workers(slots, self.cpus, self.gpus)
        self.cls_ref = ray.put(self.cls)
        self.parameter_refs = {k: ray.put(v) for k, v in self.parameters.items()}
        ray.get(
            [
                w.reset.remote(
                    self.cls_ref, self.arms_dir, self.parameter_refs, self.step_key, self.save_at
                )
                for w in workers
            ]
        )
        self.workers = list(workers)
        self.free = collections.deque(range(slots))
        self.held: list[collections.OrderedDict[str, None]] = [
            collections.OrderedDict() for _ in range(slots)
        ]
        self.where: dict[str, int] = {}  # arm -> worker holding its object
        self.saving: dict[str, Any] = {}  # arm -> its checkpoint write in flight
        self.pending: dict[Any, tuple[str, int, str]] = {}  # ref -> (kind, worker, arm)
        self.running: dict[str, int] = {}
        self.granted: dict[str, int] = {}  # running arm -> the last step it may train to
        self.joining: dict[Any, int] = {}  # a replacement worker's reset -> its slot
        self.runner.snapshot(force=True)
        self._interrupted = False
        restore_sigint = self._catch_sigint()
        try:
            self._loop(ray)
        except KeyboardInterrupt:
            self.runner.interrupt()
            for arm_id, w in self.running.items():  # may be training ahead: stop them
                self.workers[w].drop.remote(arm_id)
            raise KeyboardInterrupt(
                f"search interrupted; its state is saved in {self.path}: run the same call "
                "again to resume it"
            ) from None
        except BaseException:
            self.runner.snapshot(force=True)
            self._settle_pending(ray)
            raise
        finally:
            restore_sigint()
            for w in self.joining.values():  # never placed: they would hold a claim
                discard(self.workers[w], self.cpus, self.gpus)
            self.joining.clear()
            keep_idle(self.idle_timeout)
        self.finished = True
        self.runner.snapshot(force=True)
        return self.result(time.perf_counter() - started)

    def _catch_sigint(self) -> Any:
        """Ctrl-C sets a flag the loop reads between two results (never inside one).

        Installed even where SIGINT was ignored (a background job's default), as the
        Ray Tune path does; returns the function that puts the old handler back.
        """
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            self._interrupted = True

        before = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, handler)
        return lambda: signal.signal(signal.SIGINT, before)

    def _settle_pending(self, ray: Any, timeout: float = 10.0) -> None:
        """After an error: collect the calls still in flight.

        Ray would otherwise report their errors as unhandled later; the search's own
        error is the one that matters.
        """
        refs = list(self.pending)
        self.pending.clear()
        if not refs:
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in ready:
            try:
                ray.get(ref)
            except Exception:  # noqa: BLE001 - the search already failed with its error
                pass

    def _has_work(self) -> bool:
        runner = self.runner
        return bool(runner.wake or runner.arms.paused or self.next_config < len(self.configs))

    def _loop(self, ray: Any) -> None:
        runner = self.runner
        self._fill()
        while self.pending or (self.joining and self._has_work() and not self.running):
            ready, _ = ray.wait([*self.pending, *self.joining], num_returns=1, timeout=0.5)
            if self._interrupted:
                raise KeyboardInterrupt
            if not ready:
                continue
            ref = ready[0]
            if ref in self.joining:  # a replacement worker is up
                w = self.joining.pop(ref)
                try:
                    ray.get(ref)
                    self.free.append(w)
                except ray.exceptions.RayActorError as exc:
                    self._lost(w, "", exc, "reset")
                self._fill()
                continue
            kind, w, arm_id = self.pending.pop(ref)
            try:
                payload = ray.get(ref)
            except ray.exceptions.RayActorError as exc:
                self._lost(w, arm_id, exc, kind)
                self._fill()
                continue
            except ray.exceptions.RayTaskError as exc:
                if kind == "save":
                    self.saving.pop(arm_id, None)
                self._failed(w, arm_id, exc)
                self._fill()
                continue
            if kind == "save":
                if self.saving.get(arm_id) is ref:
                    del self.saving[arm_id]
                if arm_id not in self.stale:
                    runner.saved(arm_id, payload, checkpoint_step(payload))
                self.stale.discard(arm_id)
                continue
            self._result(w, arm_id, payload)
            self._fill()

    def _value(self, arm_id: str, result: dict[str, Any]) -> Any:
        missing = [m for m in self.metrics if m not in result]
        if missing:
            name = getattr(self.cls, "__name__", "the trainable")
            what = f"{name}.step() returned" if isinstance(self.cls, type) else f"{name} reported"
            raise ValueError(
                f"{what} no {missing[0]!r} (arm {arm_id}); it reported {sorted(result)}. "
                "Report the metric the search judges, or pass metric= one of those"
            )
        values = [float(result[m]) for m in self.metrics]
        return values[0] if len(values) == 1 else values

    def _result(self, w: int, arm_id: str, payload: dict[str, Any]) -> None:
        runner = self.runner
        result = payload["result"]
        arm = runner.arms[arm_id]
        if result is None:  # a function arm returned: nothing more to report
            decision = None
            self._end(runner.arm_ended(arm_id))
        else:
            self.succeeded = True
            self.epochs += 1
            value = self._value(arm_id, result)
            result.setdefault("time_this_iter_s", payload["seconds"])
            result["driver_time"] = time.time()  # when the driver saw it (overhead analysis)
            decision, ended = runner.report(
                arm_id,
                payload["step"],
                value,
                result=result,
                seconds=payload["seconds"],
                checkpoint=payload.get("checkpoint"),
                in_flight=len(self.running) - 1,
            )
            self._end(ended)
        if payload["done"] and arm.state is ArmState.RUNNING:
            self._end(runner.arm_ended(arm_id))
        if arm.state is ArmState.RUNNING and decision in (None, Decision.CONTINUE):
            self._launch(w, arm_id)  # goes on where it is
            return
        del self.running[arm_id]
        self.granted.pop(arm_id, None)
        if arm.state is ArmState.PAUSED:
            ref = self.workers[w].save.remote(arm_id)
            self.pending[ref] = ("save", w, arm_id)
            self.saving[arm_id] = ref
            self.held[w][arm_id] = None
            while len(self.held[w]) > self.keep:
                old, _ = self.held[w].popitem(last=False)
                self.where.pop(old, None)
                self.workers[w].drop.remote(old)
        else:
            self.where.pop(arm_id, None)
            self.workers[w].drop.remote(arm_id)
        self.free.append(w)

    def _launch(self, w: int, arm_id: str) -> None:
        worker = self.workers[w]
        step = self.runner.arms[arm_id].step
        granted = sum(
            max(1, self.granted.get(a, 0) - self.runner.arms[a].step)
            for a in self.running
            if a != arm_id and a in self.runner.arms
        )
        ahead = self.runner.run_ahead(arm_id, in_flight=granted)
        self.granted[arm_id] = step + 1 + ahead
        if self.where.get(arm_id) == w:
            self.held[w].pop(arm_id, None)
            ref = worker.step.remote(arm_id, ahead=ahead)
        else:
            old = self.where.pop(arm_id, None)
            if old is not None:
                self.held[old].pop(arm_id, None)
                self.workers[old].drop.remote(arm_id)
            checkpoint = self.saving.get(arm_id)  # Ray waits for the write it names
            if checkpoint is None:
                checkpoint = latest_checkpoint(
                    os.path.join(self.arms_dir, arm_id), at_most=self.runner.arms[arm_id].step
                )
            ref = worker.step.remote(
                arm_id, self.runner.arms[arm_id].config, checkpoint, ahead=ahead
            )
        self.where[arm_id] = w
        self.running[arm_id] = w
        self.pending[ref] = ("step", w, arm_id)

    def _forget_exploited(self) -> None:
        """Arms that took an exploit go on from the donor's checkpoint, not from a worker's copy."""
        exploited = self.runner.take_exploited()
        for arm_id in exploited:
            if arm_id in self.saving:
                self.stale.add(arm_id)  # its pause's save must not replace the copy
                del self.saving[arm_id]
        self._end(exploited)  # a worker that holds one forgets it

    def _fill(self) -> None:
        self._forget_exploited()
        self.runner.fill(self)

    # -- the backend the runner fills (driver.runner.Backend) ---------------------------
    def has_free_worker(self) -> bool:
        """Whether a worker waits for an arm."""
        return bool(self.free)

    def n_running(self) -> int:
        """Arms training now."""
        return len(self.running)

    def has_new_config(self) -> bool:
        """Whether a configuration is left to start."""
        return self.next_config < len(self.configs)

    def preferred(self) -> list[str]:
        """The paused arms the next free worker holds in memory (a resume there skips a load)."""
        return list(self.held[self.free[0]])

    def new_arm(self) -> tuple[str, dict[str, Any]]:
        """The next configuration as an arm."""
        i = self.next_config
        self.next_config += 1
        return f"arm_{i:05d}", self.configs[i]

    def launch(self, arm_id: str) -> None:
        """Train ``arm_id`` on the next free worker."""
        self._launch(self.free.popleft(), arm_id)

    def end(self, arm_ids: list[str]) -> None:
        """Arms the runner ended while paused: their workers forget them."""
        self._end(arm_ids)

    def _end(self, arm_ids: list[str]) -> None:
        """Arms the runner ended while paused: their workers forget them."""
        for arm_id in arm_ids:
            w = self.where.pop(arm_id, None)
            if w is not None and arm_id not in self.running:
                self.held[w].pop(arm_id, None)
                self.workers[w].drop.remote(arm_id)

    def _failed(self, w: int, arm_id: str, exc: BaseException) -> None:
        """The arm's step (or save) raised: place it again, or end it with its error."""
        runner = self.runner
        text = str(exc).strip().splitlines()
        self.errors[arm_id] = "\n".join(text[-20:])
        self.where.pop(arm_id, None)
        self.held[w].pop(arm_id, None)
        self.granted.pop(arm_id, None)
        if self.running.pop(arm_id, None) is not None:
            self.free.append(w)
        self.workers[w].drop.remote(arm_id)
        arm = runner.arms.get(arm_id)
        if arm is None:
            return
        retry = arm.failures < self.max_failures and arm.state is not ArmState.STOPPED
        self._end(runner.arm_failed(arm_id, retry=retry, error=self.errors[arm_id]))
        if not self.succeeded and len(self.errors) >= 3 and not retry:
            raise RuntimeError(
                f"the first {len(self.errors)} arms all failed; the first error "
                f"({next(iter(self.errors))}):\n{next(iter(self.errors.values()))}"
            )

    def _lost(self, w: int, arm_id: str, exc: BaseException, kind: str) -> None:
        """The worker died (or its node): its arms go back to the runner.

        They are placed again from their checkpoints on the other workers; a
        replacement joins once Ray can place it (after a node is lost it may never:
        the search goes on with fewer workers).
        """
        for held in list(self.held[w]):
            self.where.pop(held, None)
        self.held[w].clear()
        lost_arms = [arm_id] if kind == "step" else []
        if kind == "save":
            self.saving.pop(arm_id, None)
        for ref, (k, x, other) in list(self.pending.items()):
            if x == w:  # every other call to the dead worker fails too
                del self.pending[ref]
                if k == "save":
                    self.saving.pop(other, None)
                elif other not in lost_arms:
                    lost_arms.append(other)
        for lost in lost_arms:
            arm = self.runner.arms.get(lost)
            self.running.pop(lost, None)
            self.granted.pop(lost, None)
            self.where.pop(lost, None)
            if arm is not None:
                # a lost worker is not the arm's fault: placed again a few times
                retry = arm.failures < retry_limit(self.max_failures, lost_worker=True)
                if not retry:
                    self.errors[lost] = f"its worker died: {exc}"
                self._end(self.runner.arm_failed(lost, retry=retry, error=self.errors.get(lost)))
        if w in self.free:
            self.free.remove(w)
        fresh = _replace(self.workers[w], self.cpus, self.gpus)
        self.workers[w] = fresh
        ref = fresh.reset.remote(
            self.cls_ref, self.arms_dir, self.parameter_refs, self.step_key, self.save_at
        )
        self.joining[ref] = w

    # -- what was found ------------------------------------------------------------------
    def result(self, seconds: float) -> PoolResult:
        """What the arms reported, as a :class:`PoolResult` (``seconds``: this call's wall)."""
        runner = self.runner
        first = self.metrics[0]
        direction = runner.mode if isinstance(runner.mode, str) else runner.mode[0]
        rows = []
        best: tuple[float, str] | None = None
        for arm in runner.arms:
            # an exploited arm's model holds only its epochs since its last exploit
            own = arm.results[results_before_last_exploit(arm, len(arm.results)) :]
            values = [float(r[first]) for r in arm.results if first in r]
            finite = [float(r[first]) for r in own if first in r]
            finite = [v for v in finite if math.isfinite(v)]
            found = best_of(finite, direction)
            top = math.nan if found is None else found
            rows.append(
                {
                    "arm": arm.arm_id,
                    "config": dict(arm.config),
                    "state": arm.state.value,
                    "epochs": arm.step,
                    "best": top,
                    "last": values[-1] if values else math.nan,
                    "error": self.errors.get(arm.arm_id),
                }
            )
            if finite:
                key = orient(top, direction)
                if best is None or key > best[0]:
                    best = (key, arm.arm_id)
        rows.sort(key=lambda r: (math.isnan(r["best"]), -orient(r["best"], direction)))
        best_arm = best[1] if best else None
        return PoolResult(
            best_arm=best_arm,
            best_config=dict(runner.arms[best_arm].config) if best_arm else None,
            best_score=orient(best[0], direction) if best else math.nan,
            arms=rows,
            results=runner.arms.results(),
            decisions={k: [tuple(d) for d in v] for k, v in runner.arms.decisions().items()},
            epochs=self.epochs,
            seconds=seconds,
            workers=len(self.workers),
            path=self.path,
            stop_reason=None if runner.budget is None else runner.budget.reason,
            lineage={a.arm_id: list(a.lineage) for a in runner.arms if a.lineage},
        )
