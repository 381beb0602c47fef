"""Randomized end-to-end schedules: the real server and 2-5 real SDK devices under faults.

Each rule is one step of :mod:`linli.chaos` (the same steps ``python -m linli.soak`` draws):
offline edits of every kind, syncs with a fault on one request (lost request or response,
duplicate, delayed and reordered delivery, a database fault inside the push, the app killed and
reopened, the device revoked, an edit while the pass runs), a device wiped and enrolled again
under its id or put back to an earlier copy of its store, clock jumps, grid reassignment and
the community head's console actions. After every step the cheap invariants are checked
(nothing acknowledged lost, idempotent answers, outbox intact, read-your-writes, cursor
monotonic and covering, scope); at the end faults stop, everyone syncs twice, and convergence
and idempotent replay are checked too. A failure prints the steps; ``--hypothesis-seed``
reproduces a run.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from linli.chaos import STEP_SPACE, Harness, World


def _args(kind: str) -> dict[str, st.SearchStrategy]:
    names = ("a", "b", "c", "d")
    return {names[i]: st.sampled_from(tuple(space)) for i, space in enumerate(STEP_SPACE[kind])}


class SyncChaos(RuleBasedStateMachine):
    """One world per schedule; ``ok`` stays False once a step failed (no healing then)."""

    def __init__(self) -> None:
        super().__init__()
        self.world: World | None = None
        self.ok = True

    def _play(self, *step: object) -> None:
        assert self.world is not None
        self.ok = False
        self.world.play(step)
        self.ok = True

    @initialize(n=st.integers(2, 5))
    def start(self, n: int) -> None:
        self.world = World(Harness.shared(), n)

    @rule(**_args("create"))
    def create(self, a, b, c, d):
        self._play("create", a, b, c, d)

    @rule(**_args("update"))
    def update(self, a, b, c, d):
        self._play("update", a, b, c, d)

    @rule(**_args("update"))
    def update_again(self, a, b, c, d):  # updates twice as likely: conflicts need them
        self._play("update", a, b, c, d)

    @rule(**_args("delete"))
    def delete(self, a, b):
        self._play("delete", a, b)

    @rule(**_args("note"))
    def note(self, a, b, c):
        self._play("note", a, b, c)

    @rule(**_args("resolve"))
    def resolve(self, a, b, c):
        self._play("resolve", a, b, c)

    @rule(**_args("advance"))
    def advance(self, a, b, c):
        self._play("advance", a, b, c)

    @rule(**_args("console"))
    def console(self, a, b, c):
        self._play("console", a, b, c)

    @rule(**_args("reassign"))
    def reassign(self, a, b):
        self._play("reassign", a, b)

    @rule(**_args("clock"))
    def clock(self, a, b):
        self._play("clock", a, b)

    @rule(**_args("sync"))
    def sync(self, a, b, c):
        self._play("sync", a, b, c)

    @rule(**_args("sync_faulty"))
    def sync_faulty(self, a, b, c):
        self._play("sync", a, b, c)

    @rule(**_args("sync_faulty"))
    def sync_faulty_again(self, a, b, c):
        self._play("sync", a, b, c)

    @rule(**_args("sync_all"))
    def sync_all(self, a):
        self._play("sync_all", a)

    @rule(**_args("deliver_held"))
    def deliver_held(self, a):
        self._play("deliver_held", a)

    @rule(**_args("wipe"))
    def wipe(self, a, b):
        self._play("wipe", a, b)

    @rule(**_args("backup"))
    def backup(self, a):
        self._play("backup", a)

    @rule(**_args("restore"))
    def restore(self, a):
        self._play("restore", a)

    @rule(**_args("burst"))
    def burst(self, a, b):
        self._play("burst", a, b)

    @rule(**_args("enrol_offline"))
    def enrol_offline(self, a, b):
        self._play("enrol_offline", a, b)

    @invariant()
    def invariants_hold(self) -> None:
        if self.world is not None:
            self.ok = False
            self.world.check()
            self.ok = True

    def teardown(self) -> None:
        if self.world is None:
            return
        try:
            if self.ok:
                self.world.heal_and_check()
        finally:
            self.world.close()


SyncChaos.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_schedules_keep_every_invariant = SyncChaos.TestCase
