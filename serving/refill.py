"""Greedy decoding with the decoder's batch kept full: finished sentences make room for new ones.

Decoding batch by batch wastes the CPU at each batch's tail: sentences end
at different steps, and the last few long ones run alone, in steps of a
dozen rows that cost almost what a full batch costs (a decoder step of 8
rows ran at half the FLOP rate of one of 256). `RefillGreedy` keeps a pool
of `slots` rows instead. The encoder still runs a full batch at a time (its
states and memory wait in a queue); each decoder step runs over the pool,
and every slot whose sentence ended takes the next waiting sentence before
the following step. Only when no sentence is left to take does the pool
shrink as its sentences end (a quarter at a time, as `NumpyGreedy` does).
Batches come from an iterable, or from a shared source
(`decode_supply`) that several pools take from across windows
(`s2s.serving.continuous`); the attention memory widens to the longest
source taken and narrows again once the long rows have left.

The results are those of `NumpyGreedy`: every row starts from the start
token and its own encoder states and stops at its own end token or limit.
A row's attention memory is zero-padded to the longest source in the pool,
and the mask gives the padding exactly zero weight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from s2s.onehot import ID_DTYPE
from s2s.serving.sessions import DecoderSession, EncoderSession
from s2s.vocab import END_ID, START_ID

FLUSH_ROWS = 64  # finished rows are handed back in groups of about this many: one vectorised text decode per group


@dataclass(frozen=True)
class Batch:
    """Sources for the encoder: their row numbers (as the caller counts rows), int32 ids and output limits."""

    rows: np.ndarray
    source_ids: np.ndarray
    limits: np.ndarray


class Supply(Enum):
    """What a batch source answers instead of a batch."""

    NOTHING_YET = "nothing yet"  # no batch now, more may come: keep decoding the rows in hand
    ENDED = "ended"  # no batch will come


# take(wait) -> the next batch, or a Supply; with wait=True it blocks rather than answer NOTHING_YET.
TakeBatch = Callable[[bool], "Batch | Supply"]


@dataclass
class Finished:
    """Rows that ended (or reached their limits) together: their window rows, ids (end-padded) and cut flags."""

    rows: np.ndarray
    ids: np.ndarray  # (rows, steps) int32, END_ID after each row's last character
    cut: np.ndarray


@dataclass
class _Encoded:
    """One encoder batch waiting for slots: its window rows, limits, states and memory, and how many have left."""

    rows: np.ndarray
    limits: np.ndarray
    states: list[np.ndarray]
    memory: list[np.ndarray]
    widths: np.ndarray  # each row's source positions in the memory (its mask's ones); zeros without attention
    taken: int = 0

    @property
    def left(self) -> int:
        return len(self.rows) - self.taken


@dataclass
class _Done:
    """Finished rows not yet handed back."""

    rows: list[np.ndarray] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    cut: list[np.ndarray] = field(default_factory=list)
    count: int = 0

    def add(self, rows: np.ndarray, ids: np.ndarray, cut: np.ndarray) -> None:
        self.rows.append(rows)
        self.ids.append(ids)
        self.cut.append(cut)
        self.count += len(rows)

    def flush(self) -> Finished:
        finished = _finished(self.rows, self.ids, self.cut)
        self.rows, self.ids, self.cut, self.count = [], [], [], 0
        return finished


class RefillGreedy:
    """Greedy decoding through numpy arrays over a pool of slots refilled from a queue of encoded batches."""

    def __init__(self, encoder: EncoderSession, decoder: DecoderSession):
        self.encoder, self.decoder = encoder, decoder

    def decode(self, batches: Iterable[tuple[np.ndarray, np.ndarray]], limits: np.ndarray) -> Iterator[Finished]:
        """Groups of finished rows, in the order they finish, for `batches` of (window rows, source ids).

        Args:
            batches: encoder batches, ideally sorted by length (the pool's memory is as wide as its longest source); the
                first one's size is the pool's, the decoder's batch.
            limits: (window rows,) each row's output limit in characters.
        """
        pending = iter(batches)

        def take(wait: bool) -> Batch | Supply:
            batch = next(pending, None)
            return Supply.ENDED if batch is None else Batch(batch[0], batch[1], limits[batch[0]])

        return self.decode_supply(take)

    def decode_supply(self, take: TakeBatch, slots: int = 0) -> Iterator[Finished]:
        """Groups of finished rows, in the order they finish, for the batches `take` hands out until it answers ENDED.

        While the pool holds live rows, `take` is asked not to wait: with
        NOTHING_YET the pool steps on with the rows it has. Only an empty pool
        waits for a batch, and it hands back every finished row first, since
        whoever makes batches may be waiting for those rows (a window that
        must be written before another is read).

        Args:
            take: the batch source, shared with other pools or not.
            slots: the pool's rows, the decoder's batch; 0: the first batch's size.
        """
        queue: _Encoded | None = None
        pool: _Pool | None = None
        done = _Done()
        ended = False
        while True:
            if not ended and (queue is None or not queue.left):
                busy = pool is not None and pool.live > 0
                if not busy and done.count:
                    yield done.flush()
                supply = take(not busy)
                queue = self._encode(supply) if isinstance(supply, Batch) else None
                ended = supply is Supply.ENDED
                if supply is Supply.NOTHING_YET and done.count:  # the batch source waits for a window these rows may finish
                    yield done.flush()
            if queue is not None:
                if pool is None:  # the first batch: its own arrays become the pool's when it fills it (no copy)
                    pool = _Pool.adopt(queue) if len(queue.rows) >= slots else _Pool.empty(slots, queue.states, queue.memory)
                pool.fill(queue)
            if pool is None or not pool.live:
                if ended:
                    break
                continue
            if ended:
                pool.shrink()  # nothing left to take: finished rows leave the arrays instead
            pool.narrow()
            finished, cut = pool.step(self.decoder)
            if len(finished):
                done.add(pool.rows[finished], pool.ids_of(finished), cut)
                pool.release(finished)
                if done.count >= FLUSH_ROWS:
                    yield done.flush()
        if done.count:
            yield done.flush()

    def _encode(self, batch: Batch) -> _Encoded:
        states, memory = self.encoder(batch.source_ids)
        widths = np.count_nonzero(memory[-1], axis=1) if memory else np.zeros(len(batch.rows), dtype=np.int64)  # the source mask
        return _Encoded(batch.rows, batch.limits, states, memory, widths)


class _Pool:
    """The decoder's batch: per slot its window row, when it started and must stop, states and memory; `active` marks live slots.

    Ids are kept by step, not by slot: row `clock % capacity` of `history`
    receives every slot's token of pool step `clock`, one contiguous write,
    and a slot's ids are gathered from the rows of its own steps only when it
    finishes. With the limit kept as the step at which a slot must stop
    (`deadline`), a step's bookkeeping is a handful of whole-array operations
    instead of per-slot step counts and fancy indexing, and Python holds the
    GIL that much less while the other pools' steps wait.
    """

    def __init__(self, states: list[np.ndarray], memory: list[np.ndarray]):
        slots = len(states[0])
        self.states, self.memory = states, memory
        self.rows = np.zeros(slots, dtype=np.int64)
        self.started = np.zeros(slots, dtype=np.int64)  # the clock at a slot's first step
        self.deadline = np.zeros(slots, dtype=np.int64)  # the clock at which a slot has reached its limit
        self.widths = np.zeros(slots, dtype=np.int64)
        self.tokens = np.full(slots, START_ID, dtype=ID_DTYPE)
        self.active = np.zeros(slots, dtype=bool)
        self.live = 0  # active slots
        self.clock = 0  # steps run
        self.history = np.full((16, slots), END_ID, dtype=ID_DTYPE)  # a ring of steps, as long as the longest row so far
        self.oldest = 0  # no live slot started before this clock
        self._narrow_due = False
        self._rebind()

    def _rebind(self) -> None:
        """New spare arrays for the step's outputs, and no bindings: after any array of the pool was replaced."""
        self.spare_tokens = np.empty_like(self.tokens)
        self.spare_states = [np.empty_like(state) for state in self.states]
        self.bindings: list[Any] = []  # (current -> spare, spare -> current), made at the first step that needs them

    @classmethod
    def adopt(cls, queue: _Encoded) -> _Pool:
        """A pool made of an encoder batch's own arrays, all its rows taken: no copy, and its size is the batch's."""
        pool = cls(queue.states, queue.memory)
        pool.active[:] = True
        pool.live = len(queue.rows)
        pool.rows[:], pool.deadline[:], pool.widths[:] = queue.rows, queue.limits, queue.widths
        queue.taken = len(queue.rows)
        return pool

    @classmethod
    def empty(cls, slots: int, states: list[np.ndarray], memory: list[np.ndarray]) -> _Pool:
        """A pool of `slots` free slots, its arrays shaped (and its memory as wide) as those of an encoder batch."""
        return cls([np.zeros((slots, *state.shape[1:]), dtype=state.dtype) for state in states], [np.zeros((slots, *value.shape[1:]), dtype=value.dtype) for value in memory])

    def fill(self, queue: _Encoded) -> None:
        """Moves waiting rows of `queue` into free slots."""
        if self.live == len(self.active) or not queue.left:
            return
        free = (~self.active).nonzero()[0][: queue.left]
        taken = slice(queue.taken, queue.taken + len(free))
        queue.taken += len(free)
        for pooled, encoded in zip(self.states, queue.states, strict=True):
            pooled[free] = encoded[taken]
        for index, (pooled, encoded) in enumerate(zip(self.memory, queue.memory, strict=True)):
            width = encoded.shape[1]
            if width > pooled.shape[1]:  # a longer source than any so far: the pool's memory widens, zero-padded
                wider = np.empty((len(pooled), width, *pooled.shape[2:]), dtype=pooled.dtype)  # written once, not zeroed first
                wider[:, : pooled.shape[1]] = pooled
                wider[:, pooled.shape[1] :] = 0
                self.memory[index] = pooled = wider
                self.bindings = []  # bound to the old memory; the spare arrays keep their shapes
            pooled[free, :width] = encoded[taken]
            if width < pooled.shape[1]:
                pooled[free, width:] = 0
        self.rows[free] = queue.rows[taken]
        self.started[free] = self.clock
        self.deadline[free] = self.clock + queue.limits[taken]
        self.widths[free] = queue.widths[taken]
        self.tokens[free] = START_ID
        self.active[free] = True
        self.live += len(free)

    def _make_room(self) -> None:
        """Lengthens the history ring before a step would overwrite the first step of a live slot.

        The ring grows with the rows actually decoded, never to their limits
        up front (2,048 rows at a limit of 4,096 would be 32 MiB for a few
        characters each). `oldest` is a lower bound of the live slots'
        `started`, looked at again only when the ring comes round to it.
        """
        capacity = len(self.history)
        if self.clock - capacity < self.oldest:
            return
        self.oldest = int(self.started[self.active].min(initial=self.clock))
        if self.clock - capacity < self.oldest:
            return
        longer = np.full((2 * capacity, self.history.shape[1]), END_ID, dtype=ID_DTYPE)
        kept = np.arange(self.clock - capacity, self.clock)
        longer[kept % len(longer)] = self.history[kept % capacity]
        self.history = longer

    def step(self, decoder: DecoderSession) -> tuple[np.ndarray, np.ndarray]:
        """One decoder step over the pool; returns (slots that finished, whether each was cut by its limit)."""
        if decoder.has_next_token:  # bound: the step writes its tokens and states into the spare arrays, which then swap
            if not self.bindings:
                self.bindings = [
                    decoder.bind_step(self.tokens, self.states, self.memory, self.spare_tokens, self.spare_states),
                    decoder.bind_step(self.spare_tokens, self.spare_states, self.memory, self.tokens, self.states),
                ]
            decoder.run_bound(self.bindings[0])
            self.bindings.reverse()
            self.tokens, self.spare_tokens = self.spare_tokens, self.tokens
            self.states, self.spare_states = self.spare_states, self.states
        else:
            self.tokens, self.states = decoder.next_tokens(self.tokens, self.states, self.memory)
        tokens = self.tokens
        self._make_room()
        self.history[self.clock % len(self.history)] = tokens
        self.clock += 1
        done = tokens == END_ID
        done |= self.deadline <= self.clock
        done &= self.active
        finished = done.nonzero()[0]
        return finished, tokens[finished] != END_ID

    def ids_of(self, slots: np.ndarray) -> np.ndarray:
        """(slots, their longest) ids of finished slots, each its tokens (the end token last, unless cut) then END_ID."""
        lengths = self.clock - self.started[slots]
        steps = np.arange(int(lengths.max(initial=0)))
        ids = self.history[(self.started[slots, None] + steps) % len(self.history), slots[:, None]]
        ids[steps >= lengths[:, None]] = END_ID
        return ids

    def release(self, slots: np.ndarray) -> None:
        self.active[slots] = False
        self.live -= len(slots)
        self._narrow_due = True

    def narrow(self) -> None:
        """Cuts the attention memory to the longest source still in the pool once it is an eighth narrower.

        The memory widens to the longest source a slot has taken; with
        windows sorted by length, the long rows at one window's end give way
        to short ones from the next. Every step reads the whole memory (64
        rows x 80 positions x 256 floats is 5 MB, past the caches), so
        keeping it as wide as the rows need pays for the copy many times.
        Only a release can make the rows narrower, so only then is it looked at.
        """
        if not self.memory or not self._narrow_due:
            return
        self._narrow_due = False
        width = self.memory[0].shape[1]
        needed = max(1, int(self.widths[self.active].max(initial=1)))
        if needed <= 0.875 * width:
            self.memory = [np.ascontiguousarray(value[:, :needed]) for value in self.memory]
            self.bindings = []  # bound to the wider memory; the spare arrays keep their shapes

    def shrink(self) -> None:
        """Drops ended slots once a quarter of the pool has ended: copying the memory costs more than a few idle rows."""
        if self.live > 0.75 * len(self.active):
            return
        keep = self.active
        self.states = [state[keep] for state in self.states]
        self.memory = [value[keep] for value in self.memory]
        self.rows, self.started, self.deadline, self.widths = self.rows[keep], self.started[keep], self.deadline[keep], self.widths[keep]
        self.tokens, self.history, self.active = self.tokens[keep], np.ascontiguousarray(self.history[:, keep]), self.active[keep]
        self.oldest = 0
        self._rebind()


def _finished(rows: list[np.ndarray], ids: list[np.ndarray], cut: list[np.ndarray]) -> Finished:
    width = max(part.shape[1] for part in ids)
    padded = np.full((sum(map(len, rows)), width), END_ID, dtype=ID_DTYPE)
    start = 0
    for part in ids:
        padded[start : start + len(part), : part.shape[1]] = part
        start += len(part)
    return Finished(np.concatenate(rows), padded, np.concatenate(cut))
